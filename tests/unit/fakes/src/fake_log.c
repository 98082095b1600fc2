/* Fake Zephyr logging backend: keeps the messages for the tests and prints them. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <fake_log.h>
#include <zephyr/logging/log.h>

#define MAX_MESSAGES 256
#define MAX_LEN      256

static char messages[MAX_MESSAGES][MAX_LEN];
static int levels[MAX_MESSAGES];
static unsigned int count;
static bool quiet;

void fake_log_quiet(bool value)
{
	quiet = value;
}

void fake_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {"", "ERR", "WRN", "INF", "DBG"};
	va_list args;

	if (quiet || count >= MAX_MESSAGES) {
		return;
	}
	va_start(args, fmt);
	vsnprintf(messages[count], MAX_LEN, fmt, args);
	va_end(args);
	levels[count] = level;
	printf("  [%s] %s\n", names[level], messages[count]);
	count++;
}

void fake_log_reset(void)
{
	count = 0;
}

bool fake_log_contains(int level, const char *text)
{
	for (unsigned int i = 0; i < count; i++) {
		if (levels[i] == level && strstr(messages[i], text) != NULL) {
			return true;
		}
	}
	return false;
}

unsigned int fake_log_count(int level)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < count; i++) {
		n += levels[i] == level ? 1U : 0U;
	}
	return n;
}
