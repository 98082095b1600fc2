# provguard build integration: the certificates.h of development images and the leak scan of
# release images. Plain CMake (no Zephyr API), so tests/firmware/cmake-host exercises it on the host.
#
#   PROVGUARD_COMMAND   the provguard executable (default: `provguard` found on PATH)
#   PROVGUARD_SCAN      ON (default): release builds run `provguard scan`; OFF skips it, loudly
#
# CERT_DIR layout (any one of):
#   certificates.json                 Link Monitor / Cellular Monitor export (caCert, clientCert,
#                                     privateKey, secTag)
#   ca.pem [client.pem client.key]    CA certificate, optionally with the client certificate and its
#                                     private key (PEM or DER content; both or neither)

include_guard(GLOBAL)

set(PROVGUARD_SCAN ON CACHE BOOL "Run `provguard scan` on the image after every build without provisioning")

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
  file(MAKE_DIRECTORY ${output_dir})
  # A stale header must never survive a refused render.
  file(REMOVE ${ARG_OUTPUT})

  execute_process(
    COMMAND ${command} render ${cert_args} --sec-tag ${ARG_SEC_TAG} -o ${ARG_OUTPUT}
    RESULT_VARIABLE result
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    file(REMOVE ${ARG_OUTPUT})
    message(FATAL_ERROR
      "provguard render refused the credentials in ${ARG_CERT_DIR} (exit ${result}):\n"
      "${out}${err}")
  endif()
  if(NOT EXISTS ${ARG_OUTPUT})
    message(FATAL_ERROR "provguard render exited 0 but did not write ${ARG_OUTPUT}")
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

# provguard_scan_after_build(DEPENDS <target>... FILES <image>... [CERT_DIR <dir>])
#
# Adds the `provguard_scan` target, part of `all`: after <target> is built, `provguard scan` reads
# FILES (hex, ELF), with the credentials found in CERT_DIR as known keys, and fails the build when it
# finds key material.
function(provguard_scan_after_build)
  cmake_parse_arguments(ARG "" "CERT_DIR" "DEPENDS;FILES" ${ARGN})
  if(NOT ARG_DEPENDS OR NOT ARG_FILES)
    message(FATAL_ERROR "provguard_scan_after_build needs DEPENDS and FILES")
  endif()

  if(NOT PROVGUARD_SCAN)
    message(WARNING
      "provguard: PROVGUARD_SCAN=OFF: this image is NOT checked for leaked keys")
    return()
  endif()

  _provguard_command(command)
  set(known_args)
  if(ARG_CERT_DIR AND IS_DIRECTORY ${ARG_CERT_DIR})
    _provguard_cert_args(${ARG_CERT_DIR} FALSE cert_args cert_files)
    # The scan looks for keys; the CA certificate names none, so only the pair is passed.
    set(known_args ${cert_args})
  endif()

  add_custom_target(provguard_scan ALL
    COMMAND ${command} scan ${ARG_FILES} ${known_args}
    COMMENT "provguard: scanning the image for private keys"
    VERBATIM)
  add_dependencies(provguard_scan ${ARG_DEPENDS})
endfunction()

# provguard_check_tls_peer_verify(<value of CONFIG_MQTT_TLS_PEER_VERIFY>)
function(provguard_check_tls_peer_verify value)
  if(NOT "${value}" STREQUAL "2")
    message(WARNING
      "CONFIG_MQTT_TLS_PEER_VERIFY=${value}: TLS peer verification is lowered from 2 (required). "
      "The device will talk to whoever answers on the broker's address.")
  endif()
endfunction()
