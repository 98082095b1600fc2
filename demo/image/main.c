/*
 * Demo image: links app/src/credentials.c exactly as the application does, with a bare
 * Cortex-M33 start-up instead of Zephyr, so the leak scan runs on a real ARM ELF/HEX/BIN.
 */

#include <stddef.h>
#include <stdint.h>

#include "credentials.h"

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top;

volatile size_t credential_bytes;

int main(void);
void reset_handler(void);

__attribute__((section(".vectors"), used)) static const uintptr_t vectors[2] = {
	(uintptr_t)&__stack_top,
	(uintptr_t)reset_handler,
};

void reset_handler(void)
{
	const uint32_t *src = &__data_load;

	for (uint32_t *dst = &__data_start; dst < &__data_end;) {
		*dst++ = *src++;
	}
	for (uint32_t *dst = &__bss_start; dst < &__bss_end;) {
		*dst++ = 0;
	}
	(void)main();
	for (;;) {
	}
}

int main(void)
{
	const struct provguard_credential *table;
	size_t count = provguard_credentials(&table);

	for (size_t i = 0; i < count; i++) {
		credential_bytes += table[i].len;
	}
	return 0;
}
