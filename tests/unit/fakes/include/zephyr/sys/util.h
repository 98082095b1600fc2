/*
 * Fake of zephyr/sys/util.h: the helpers provguard uses, with upstream names and meaning
 * (include/zephyr/sys/util.h and util_macro.h, zephyrproject-rtos/zephyr as in NCS v3.4.1).
 */

#ifndef FAKE_ZEPHYR_SYS_UTIL_H_
#define FAKE_ZEPHYR_SYS_UTIL_H_

#include <zephyr/toolchain.h>

#define ARRAY_SIZE(array) (sizeof(array) / sizeof((array)[0]))

#ifndef MIN
#define MIN(a, b) (((a) < (b)) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) (((a) > (b)) ? (a) : (b))
#endif

#define KB(x) ((x) << 10)

/*
 * IS_ENABLED(CONFIG_FOO) is 1 when CONFIG_FOO is defined to 1 (as Kconfig does for y), else 0,
 * usable in C expressions. Same contract as upstream, own implementation.
 */
#define FAKE_ENABLED_PROBE_1                 FAKE_IGNORED,
#define FAKE_IS_ENABLED(x)                   FAKE_IS_ENABLED_(FAKE_ENABLED_PROBE_##x)
#define FAKE_IS_ENABLED_(probe)              FAKE_IS_ENABLED__(probe 1, 0)
#define FAKE_IS_ENABLED__(ignored, val, ...) val
#define IS_ENABLED(config_macro)             FAKE_IS_ENABLED(config_macro)

#endif /* FAKE_ZEPHYR_SYS_UTIL_H_ */
