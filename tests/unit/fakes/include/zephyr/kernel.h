/*
 * Fake of zephyr/kernel.h: the kernel calls provguard uses.
 *
 * Mirrors include/zephyr/kernel.h (zephyrproject-rtos/zephyr as in NCS v3.4.1):
 *   int32_t k_sleep(k_timeout_t timeout);
 * k_timeout_t is reduced to a millisecond count; K_SECONDS/K_MSEC keep their meaning.
 */

#ifndef FAKE_ZEPHYR_KERNEL_H_
#define FAKE_ZEPHYR_KERNEL_H_

#include <stddef.h>
#include <stdint.h>

#include <zephyr/toolchain.h>
#include <zephyr/sys/util.h>

typedef struct {
	int64_t ticks;
} k_timeout_t;

#define K_MSEC(ms)   ((k_timeout_t){.ticks = (int64_t)(ms)})
#define K_SECONDS(s) K_MSEC((int64_t)(s)*1000)

int32_t k_sleep(k_timeout_t timeout);

#endif /* FAKE_ZEPHYR_KERNEL_H_ */
