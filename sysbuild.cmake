# provguard: the leak gate on everything a sysbuild build produces for flashing or update.
#
# Zephyr's sysbuild includes this file (share/sysbuild/CMakeLists.txt: the sysbuild.cmake of
# every image's source directory) before the images are configured, so before NCS adds the
# combined outputs: merged.hex (sdk-nrf cmake/sysbuild/partition_manager.cmake, target
# merged_hex) and dfu_application.zip (sdk-nrf cmake/sysbuild/zip.cmake and cmake/fw_zip.cmake,
# target dfu_application_zip), both in the sysbuild build directory, NCS v3.4.x. So the gate is
# added by a call deferred to the end of the sysbuild top-level directory, when they all exist:
# provguard_sysbuild_gate() in cmake/provguard.cmake.
#
#   west build -b nrf9160dk/nrf9160/ns -- -DEXTRA_CONF_FILE=overlay-release.conf
# fails when provguard scan finds a key (or cannot read something) in build/merged.hex,
# build/dfu_application.zip or build/<image>/zephyr/zephyr.{elf,hex,bin,signed.hex,signed.bin}.
# Without sysbuild (--no-sysbuild) the application's CMakeLists.txt gates its own image instead.

include(${CMAKE_CURRENT_LIST_DIR}/cmake/provguard.cmake)

cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL provguard_sysbuild_gate)
