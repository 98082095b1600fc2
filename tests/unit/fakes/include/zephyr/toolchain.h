/*
 * Fake of zephyr/toolchain.h for host tests and the Cortex-M33 compile check.
 *
 * Mirrors the macros provguard uses from include/zephyr/toolchain/common.h and
 * include/zephyr/toolchain/gcc.h (zephyrproject-rtos/zephyr, as shipped in sdk-zephyr for
 * NCS v3.4.1): BUILD_ASSERT, STRINGIFY, ARG_UNUSED, __printf_like.
 */

#ifndef FAKE_ZEPHYR_TOOLCHAIN_H_
#define FAKE_ZEPHYR_TOOLCHAIN_H_

#define BUILD_ASSERT(EXPR, MSG...) _Static_assert((EXPR), "" MSG)

#define Z_STRINGIFY(x) #x
#define STRINGIFY(s)   Z_STRINGIFY(s)

#define ARG_UNUSED(x) (void)(x)

#define __printf_like(f, a) __attribute__((format(printf, f, a)))

#endif /* FAKE_ZEPHYR_TOOLCHAIN_H_ */
