# provguard leak gate, run at build time by the targets cmake/provguard.cmake adds:
#   cmake -DPROVGUARD_GATE_ARGS=<file> -P provguard_gate.cmake
# <file> sets PG_COMMAND, PG_FILES, PG_KNOWN_ARGS, PG_KNOWN_FILES, PG_STAMP and PG_LABEL.
#
# The stamp holds the SHA-256 of every scanned file and known-key file and the command line of
# the last scan that exited 0. When they are all unchanged, nothing is scanned (a no-op rebuild).
# Otherwise the stamp is removed and `provguard scan` runs; only exit 0 writes it back, so a
# finding (exit 1) or a NOT CLEAN verdict with unchecked input (exit 2) fails every build until
# the outputs change and scan clean.

if(NOT DEFINED PROVGUARD_GATE_ARGS OR NOT EXISTS "${PROVGUARD_GATE_ARGS}")
  message(FATAL_ERROR "provguard gate: argument file missing (${PROVGUARD_GATE_ARGS})")
endif()
include("${PROVGUARD_GATE_ARGS}")

set(scan_command ${PG_COMMAND} scan ${PG_FILES} ${PG_KNOWN_ARGS})
string(REPLACE ";" " " manifest "${scan_command}")
string(APPEND manifest "\n")
foreach(path IN LISTS PG_FILES PG_KNOWN_FILES)
  if(NOT EXISTS "${path}" OR IS_DIRECTORY "${path}")
    file(REMOVE "${PG_STAMP}")
    message(FATAL_ERROR
      "provguard: ${path} is not there: the build did not produce it, so it cannot be checked "
      "for private keys. The gate fails closed.")
  endif()
  file(SHA256 "${path}" digest)
  string(APPEND manifest "${digest}  ${path}\n")
endforeach()

if(EXISTS "${PG_STAMP}")
  file(READ "${PG_STAMP}" previous)
  if(previous STREQUAL manifest)
    message(STATUS "provguard: ${PG_LABEL}: unchanged since the last clean scan, not scanned again")
    return()
  endif()
endif()

file(REMOVE "${PG_STAMP}")
message(STATUS "provguard: scanning ${PG_LABEL} for private keys")
execute_process(COMMAND ${scan_command} RESULT_VARIABLE result)
if(result STREQUAL "0")
  get_filename_component(stamp_dir "${PG_STAMP}" DIRECTORY)
  file(MAKE_DIRECTORY "${stamp_dir}")
  file(WRITE "${PG_STAMP}" "${manifest}")
elseif(result STREQUAL "1")
  message(FATAL_ERROR
    "provguard: private key material in ${PG_LABEL} (provguard scan exit 1, findings above). "
    "Do not flash, ship or share these files.")
elseif(result STREQUAL "2")
  message(FATAL_ERROR
    "provguard: ${PG_LABEL} NOT CLEAN: provguard scan could not read everything (exit 2, "
    "unchecked inputs above). The gate fails closed.")
else()
  message(FATAL_ERROR "provguard: `provguard scan` did not run to the end (${result}). "
    "The gate fails closed.")
endif()
