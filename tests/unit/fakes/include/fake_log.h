/* Test access to what the code under test logged through the fake zephyr/logging/log.h. */

#ifndef FAKE_LOG_H_
#define FAKE_LOG_H_

#include <stdbool.h>

void fake_log_reset(void);
/** While quiet, messages are neither kept nor printed (for loops of thousands of events). */
void fake_log_quiet(bool quiet);
/** Whether a message at @p level (LOG_LEVEL_*) containing @p text was logged since the reset. */
bool fake_log_contains(int level, const char *text);
/** Messages logged at @p level since the reset. */
unsigned int fake_log_count(int level);

#endif /* FAKE_LOG_H_ */
