/*
 * credentials.c without CONFIG_PROVISION_CERTIFICATES (a release image): no table, no bytes.
 * certificates.h is on the include path here, so this also proves the release build ignores it.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "credentials.h"

#if defined(CONFIG_PROVISION_CERTIFICATES)
#error "this test is the release configuration"
#endif

static void test_release_build_has_no_credentials(void **state)
{
	const struct provguard_credential *table = (const void *)1;

	(void)state;
	assert_int_equal(provguard_credentials(&table), 0);
	assert_null(table);
	assert_int_equal(provguard_credentials_sec_tag(), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release_build_has_no_credentials),
	};

	return cmocka_run_group_tests_name("credentials_release", tests, NULL, NULL);
}
