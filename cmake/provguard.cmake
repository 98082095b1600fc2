# provguard build integration: the certificates.h of development images and the leak gate of
# release images. Plain CMake (no Zephyr API), so tests/firmware/cmake-host and
# tests/firmware/sysbuild-host exercise it on the host.
#
#   PROVGUARD_COMMAND   the provguard executable (default: `provguard` found on PATH)
#   PROVGUARD_SCAN      ON (default): release builds run `provguard scan`; OFF skips it, loudly
#   PROVGUARD_ALLOW     allowlist file passed to the scan (--allow)
#   PROVGUARD_MCUBOOT_ENC_KEY  key for encrypted MCUboot images (--mcuboot-enc-key); under
#                       sysbuild it defaults to SB_CONFIG_BOOT_ENCRYPTION_KEY_FILE
#
# Two entry points for the gate:
#   - provguard_scan_after_build(): one Zephyr image (plain, non-sysbuild build), called from the
#     application's CMakeLists.txt;
#   - provguard_sysbuild_gate(): everything a sysbuild build produces for flashing or update,
#     called from the application's sysbuild.cmake.
# Both run cmake/provguard_gate.cmake after the images are built: it hashes the files, and only
# when they differ from what the last clean scan saw (the stamp) does it run `provguard scan`.
# The stamp is written only after exit 0, so a finding (1) or anything unchecked (2) fails every
# build until it is fixed.
#
# CERT_DIR layout (any one of):
#   certificates.json                 Link Monitor / Cellular Monitor export (caCert, clientCert,
#                                     privateKey, secTag)
#   ca.pem [client.pem client.key]    CA certificate, optionally with the client certificate and its
#                                     private key (PEM or DER content; both or neither)

include_guard(GLOBAL)

set(_PROVGUARD_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})

set(PROVGUARD_SCAN ON CACHE BOOL "Run `provguard scan` on the image after every build without provisioning")
set(PROVGUARD_ALLOW "" CACHE FILEPATH
  "provguard allowlist for the gate (scan --allow), e.g. MCUboot's own image-decryption key")
set(PROVGUARD_MCUBOOT_ENC_KEY "" CACHE FILEPATH
  "Key that decrypts encrypted MCUboot images (scan --mcuboot-enc-key); without it they are NOT CLEAN")

function(_provguard_command out)
  if(NOT PROVGUARD_COMMAND)
    find_program(PROVGUARD_COMMAND provguard)
  endif()
  if(NOT PROVGUARD_COMMAND)
    message(FATAL_ERROR
      "provguard: the `provguard` command was not found. Install it in the Python environment "
      "west uses (pip install -e <this repository>) or pass -DPROVGUARD_COMMAND=<path>.")
  endif()
  set(${out} ${PROVGUARD_COMMAND} PARENT_SCOPE)
endfunction()

# The credential files of CERT_DIR as provguard options. REQUIRE_CA: the CA certificate must be
# there (rendering); otherwise whatever is present is used (known keys for the scan).
function(_provguard_cert_args cert_dir require_ca out_args out_files)
  set(json ${cert_dir}/certificates.json)
  set(ca ${cert_dir}/ca.pem)
  set(cert ${cert_dir}/client.pem)
  set(key ${cert_dir}/client.key)
  set(args)
  set(files)

  if(EXISTS ${json})
    if(EXISTS ${ca} OR EXISTS ${cert} OR EXISTS ${key})
      message(FATAL_ERROR
        "provguard: ${cert_dir} holds both certificates.json and PEM files; keep one of the two")
    endif()
    list(APPEND args --from ${json})
    list(APPEND files ${json})
  else()
    if(require_ca AND NOT EXISTS ${ca})
      message(FATAL_ERROR
        "provguard: ${ca} is missing. CONFIG_PROVISION_CERTIFICATES needs the broker's CA "
        "certificate there (and client.pem + client.key for mutual TLS), or certificates.json. "
        "Set CERT_DIR to use another directory.")
    endif()
    if(EXISTS ${cert} AND NOT EXISTS ${key})
      message(FATAL_ERROR "provguard: ${cert} is there but ${key} is missing: give both or neither")
    endif()
    if(EXISTS ${key} AND NOT EXISTS ${cert})
      message(FATAL_ERROR "provguard: ${key} is there but ${cert} is missing: give both or neither")
    endif()
    if(require_ca)
      list(APPEND args --ca ${ca})
      list(APPEND files ${ca})
    endif()
    if(EXISTS ${cert})
      list(APPEND args --cert ${cert} --key ${key})
      list(APPEND files ${cert} ${key})
    endif()
  endif()

  set(${out_args} ${args} PARENT_SCOPE)
  set(${out_files} ${files} PARENT_SCOPE)
endfunction()

# provguard_render_certificates(CERT_DIR <dir> SEC_TAG <n> OUTPUT <file>)
#
# Runs `provguard render` at configure time. A credential problem stops the configure step with
# provguard's diagnosis (render checks the credentials first). Editing a credential file re-runs
# the configure step.
function(provguard_render_certificates)
  cmake_parse_arguments(ARG "" "CERT_DIR;SEC_TAG;OUTPUT" "" ${ARGN})
  if(NOT ARG_CERT_DIR OR "${ARG_SEC_TAG}" STREQUAL "" OR NOT ARG_OUTPUT)
    message(FATAL_ERROR "provguard_render_certificates needs CERT_DIR, SEC_TAG and OUTPUT")
  endif()

  _provguard_command(command)
  _provguard_cert_args(${ARG_CERT_DIR} TRUE cert_args cert_files)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${cert_files})

  get_filename_component(output_dir ${ARG_OUTPUT} DIRECTORY)
  get_filename_component(output_name ${ARG_OUTPUT} NAME)
  # Rendered next to the header, then copied only when it differs: a reconfigure with the same
  # credentials leaves certificates.h (and so every object that includes it) untouched.
  set(render_dir ${output_dir}/.provguard-render)
  set(rendered ${render_dir}/${output_name})
  file(MAKE_DIRECTORY ${render_dir})
  file(REMOVE ${rendered})

  execute_process(
    COMMAND ${command} render ${cert_args} --sec-tag ${ARG_SEC_TAG} -o ${rendered}
    RESULT_VARIABLE result
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    # A stale header must never survive a refused render.
    file(REMOVE ${rendered} ${ARG_OUTPUT})
    message(FATAL_ERROR
      "provguard render refused the credentials in ${ARG_CERT_DIR} (exit ${result}):\n"
      "${out}${err}")
  endif()
  if(NOT EXISTS ${rendered})
    file(REMOVE ${ARG_OUTPUT})
    message(FATAL_ERROR "provguard render exited 0 but did not write ${rendered}")
  endif()
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E copy_if_different ${rendered} ${ARG_OUTPUT}
    RESULT_VARIABLE result)
  file(REMOVE ${rendered})
  if(NOT result EQUAL 0)
    file(REMOVE ${ARG_OUTPUT})
    message(FATAL_ERROR "provguard: could not write ${ARG_OUTPUT}")
  endif()

  message(WARNING
    "\n"
    "**********************************************************************\n"
    "* CONFIG_PROVISION_CERTIFICATES=y: THIS IMAGE CARRIES TLS CREDENTIALS *\n"
    "* (from ${ARG_CERT_DIR})\n"
    "* Anyone with the image or the device's flash has the private key.   *\n"
    "* Development only: never ship or share it.                          *\n"
    "**********************************************************************")
endfunction()

# provguard_scan_gate(NAME <target> FILES <file>... [DEPENDS <target>...] [CERT_DIR <dir>]
#                     [LABEL <text>] [MCUBOOT_ENC_KEY <file>])
#
# Adds <target>, part of `all`, built after DEPENDS: it runs cmake/provguard_gate.cmake, which
# fails the build unless `provguard scan FILES` (with the pair found in CERT_DIR as known keys)
# exits 0. FILES may hold generator expressions. A file that is missing when the gate runs fails
# the build: the gate never says clean for bytes it did not read.
function(provguard_scan_gate)
  cmake_parse_arguments(ARG "" "NAME;CERT_DIR;LABEL;MCUBOOT_ENC_KEY" "DEPENDS;FILES" ${ARGN})
  if(NOT ARG_MCUBOOT_ENC_KEY)
    set(ARG_MCUBOOT_ENC_KEY "${PROVGUARD_MCUBOOT_ENC_KEY}")
  endif()
  if(NOT ARG_NAME OR NOT ARG_FILES)
    message(FATAL_ERROR "provguard_scan_gate needs NAME and FILES")
  endif()
  if(NOT ARG_LABEL)
    set(ARG_LABEL "the image")
  endif()

  if(NOT PROVGUARD_SCAN)
    message(WARNING
      "provguard: PROVGUARD_SCAN=OFF: ${ARG_LABEL} is NOT checked for leaked keys")
    return()
  endif()

  _provguard_command(command)
  set(known_args)
  set(known_files)
  if(ARG_CERT_DIR AND IS_DIRECTORY ${ARG_CERT_DIR})
    _provguard_cert_args(${ARG_CERT_DIR} FALSE known_args known_files)
  endif()
  # Inputs of the scan besides the images: hashed into the stamp like them.
  foreach(option_file "--allow;${PROVGUARD_ALLOW}" "--mcuboot-enc-key;${ARG_MCUBOOT_ENC_KEY}")
    list(POP_FRONT option_file option)
    if(option_file)
      if(NOT EXISTS "${option_file}")
        message(FATAL_ERROR "provguard: ${option} ${option_file}: no such file")
      endif()
      list(APPEND known_args ${option} ${option_file})
      list(APPEND known_files ${option_file})
    endif()
  endforeach()

  set(gate_dir ${CMAKE_CURRENT_BINARY_DIR}/provguard)
  set(args_file ${gate_dir}/${ARG_NAME}.args.cmake)
  set(stamp ${gate_dir}/${ARG_NAME}.stamp)
  # Lists go through a generated file (generator expressions evaluated, `;` kept intact). It is
  # rewritten only when its content changes.
  set(content "# Generated by cmake/provguard.cmake for ${ARG_NAME}: input of provguard_gate.cmake\n")
  foreach(pair
      "PG_COMMAND;${command}" "PG_FILES;${ARG_FILES}" "PG_KNOWN_ARGS;${known_args}"
      "PG_KNOWN_FILES;${known_files}" "PG_STAMP;${stamp}" "PG_LABEL;${ARG_LABEL}")
    list(POP_FRONT pair var)
    set(quoted)
    foreach(item IN LISTS pair)
      string(APPEND quoted " [==[${item}]==]")
    endforeach()
    string(APPEND content "set(${var}${quoted})\n")
  endforeach()
  file(GENERATE OUTPUT ${args_file} CONTENT "${content}")

  add_custom_target(${ARG_NAME} ALL
    COMMAND ${CMAKE_COMMAND} -DPROVGUARD_GATE_ARGS=${args_file}
            -P ${_PROVGUARD_CMAKE_DIR}/provguard_gate.cmake
    COMMENT "provguard: leak gate on ${ARG_LABEL}"
    VERBATIM)
  if(ARG_DEPENDS)
    add_dependencies(${ARG_NAME} ${ARG_DEPENDS})
  endif()
endfunction()

# provguard_scan_after_build(DEPENDS <target>... FILES <image>... [CERT_DIR <dir>])
#
# The gate for one image of a plain (non-sysbuild) build: the `provguard_scan` target.
function(provguard_scan_after_build)
  cmake_parse_arguments(ARG "" "CERT_DIR" "DEPENDS;FILES" ${ARGN})
  if(NOT ARG_DEPENDS OR NOT ARG_FILES)
    message(FATAL_ERROR "provguard_scan_after_build needs DEPENDS and FILES")
  endif()
  provguard_scan_gate(NAME provguard_scan FILES ${ARG_FILES} DEPENDS ${ARG_DEPENDS}
    CERT_DIR "${ARG_CERT_DIR}" LABEL "the image")
endfunction()

# provguard_sysbuild_gate()
#
# Called at the end of the sysbuild top-level directory (the application's sysbuild.cmake
# defers it there), when sysbuild and NCS have added every image and the combined outputs.
# Gates, in the sysbuild build directory:
#   - for every image in IMAGES, its zephyr.elf / .hex / .bin and zephyr.signed.hex / .bin as
#     named by the image's BYPRODUCT_KERNEL_*_NAME cache variables (zephyr CMakeLists.txt; read
#     back by sdk-nrf cmake/sysbuild/partition_manager.cmake the same way), falling back to
#     <image>/zephyr/<CONFIG_KERNEL_BIN_NAME>.elf and .hex;
#   - merged.hex, target merged_hex (sdk-nrf cmake/sysbuild/partition_manager.cmake, Partition
#     Manager builds), merged_<domain>.hex (target merged_<domain>_hex, same file), and
#     merged_<board target>.hex (target merged_<board target>_target, zephyr
#     share/sysbuild/cmake/modules/sysbuild_merged_hex.cmake, SB_CONFIG_MERGED_HEX_FILES);
#   - dfu_application.zip and any other dfu_<name>.zip, whose targets are named after the file
#     with '.' replaced by '_' (sdk-nrf cmake/fw_zip.cmake generate_dfu_zip(), called by
#     cmake/sysbuild/zip.cmake).
# The known keys come from the CERT_DIR of the application image (DEFAULT_IMAGE). A development
# build (CONFIG_PROVISION_CERTIFICATES=y in DEFAULT_IMAGE) carries keys on purpose: not gated,
# and said so.
function(provguard_sysbuild_gate)
  set(pg_provision)
  sysbuild_get(pg_provision IMAGE ${DEFAULT_IMAGE} VAR CONFIG_PROVISION_CERTIFICATES KCONFIG)
  if(pg_provision)
    message(WARNING
      "provguard: ${DEFAULT_IMAGE} is a development image (CONFIG_PROVISION_CERTIFICATES=y): "
      "merged.hex and dfu_application.zip carry its private key and are NOT leak-gated. "
      "Never ship them.")
    return()
  endif()
  set(pg_cert_dir)
  sysbuild_get(pg_cert_dir IMAGE ${DEFAULT_IMAGE} VAR CERT_DIR CACHE)

  set(files)
  set(depends)
  foreach(image ${IMAGES})
    get_target_property(binary_dir ${image} _EP_BINARY_DIR)
    set(image_files)
    foreach(var ELF HEX BIN SIGNED_HEX SIGNED_BIN SIGNED_ENCRYPTED_HEX SIGNED_ENCRYPTED_BIN)
      set(pg_value)
      sysbuild_get(pg_value IMAGE ${image} VAR BYPRODUCT_KERNEL_${var}_NAME CACHE)
      if(pg_value)
        list(APPEND image_files ${pg_value})
      endif()
    endforeach()
    if(NOT image_files)
      set(pg_kernel)
      sysbuild_get(pg_kernel IMAGE ${image} VAR CONFIG_KERNEL_BIN_NAME KCONFIG)
      if(NOT pg_kernel)
        set(pg_kernel zephyr)
      endif()
      set(image_files ${binary_dir}/zephyr/${pg_kernel}.elf ${binary_dir}/zephyr/${pg_kernel}.hex)
    endif()
    list(APPEND files ${image_files})
    list(APPEND depends ${image})
    if(TARGET ${image}_extra_byproducts)
      list(APPEND depends ${image}_extra_byproducts)
    endif()
  endforeach()

  get_property(targets DIRECTORY ${CMAKE_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target ${targets})
    set(output)
    if(target MATCHES "^merged(_[A-Za-z0-9]+)?_hex$")
      set(output merged${CMAKE_MATCH_1}.hex)
    elseif(target MATCHES "^merged_(.+)_target$")
      set(output merged_${CMAKE_MATCH_1}.hex)
    elseif(target MATCHES "^(dfu_[A-Za-z0-9_]+)_zip$")
      set(output ${CMAKE_MATCH_1}.zip)
    endif()
    if(output)
      list(APPEND files ${CMAKE_BINARY_DIR}/${output})
      list(APPEND depends ${target})
    endif()
  endforeach()

  list(REMOVE_DUPLICATES files)
  string(REPLACE ";" "\n     " listing "${files}")
  message(STATUS "provguard: sysbuild leak gate on\n     ${listing}")
  # Encrypted MCUboot images are read with the key sysbuild encrypts them with.
  set(enc_key "${PROVGUARD_MCUBOOT_ENC_KEY}")
  if(NOT enc_key AND SB_CONFIG_BOOT_ENCRYPTION AND SB_CONFIG_BOOT_ENCRYPTION_KEY_FILE)
    string(CONFIGURE "${SB_CONFIG_BOOT_ENCRYPTION_KEY_FILE}" enc_key)
    if(NOT IS_ABSOLUTE "${enc_key}")
      set(enc_key ${APP_DIR}/${enc_key})
    endif()
  endif()
  provguard_scan_gate(NAME provguard_sysbuild_scan FILES ${files} DEPENDS ${depends}
    CERT_DIR "${pg_cert_dir}" LABEL "the sysbuild outputs" MCUBOOT_ENC_KEY "${enc_key}")
endfunction()

# provguard_check_tls_peer_verify(<value of CONFIG_MQTT_TLS_PEER_VERIFY>)
function(provguard_check_tls_peer_verify value)
  if(NOT "${value}" STREQUAL "2")
    message(WARNING
      "CONFIG_MQTT_TLS_PEER_VERIFY=${value}: TLS peer verification is lowered from 2 (required). "
      "The device will talk to whoever answers on the broker's address.")
  endif()
endfunction()
