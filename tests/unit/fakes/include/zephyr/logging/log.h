/*
 * Fake of zephyr/logging/log.h. Same macro names as include/zephyr/logging/log.h (zephyr, as in
 * NCS v3.4.1); every message goes to fake_log(), which checks the format like printf and lets the
 * tests read what was logged.
 */

#ifndef FAKE_ZEPHYR_LOGGING_LOG_H_
#define FAKE_ZEPHYR_LOGGING_LOG_H_

#include <zephyr/toolchain.h>

#define LOG_LEVEL_NONE 0
#define LOG_LEVEL_ERR  1
#define LOG_LEVEL_WRN  2
#define LOG_LEVEL_INF  3
#define LOG_LEVEL_DBG  4

void fake_log(int level, const char *fmt, ...) __printf_like(2, 3);

#define LOG_MODULE_REGISTER(name, level)                                                           \
	static const int fake_log_level_##name __attribute__((unused)) = (level)

#define LOG_ERR(...) fake_log(LOG_LEVEL_ERR, __VA_ARGS__)
#define LOG_WRN(...) fake_log(LOG_LEVEL_WRN, __VA_ARGS__)
#define LOG_INF(...) fake_log(LOG_LEVEL_INF, __VA_ARGS__)
#define LOG_DBG(...) fake_log(LOG_LEVEL_DBG, __VA_ARGS__)

#endif /* FAKE_ZEPHYR_LOGGING_LOG_H_ */
