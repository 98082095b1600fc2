/* Prints what the credential table holds: count, sec_tag, and type and length of each entry. */

#include <stdio.h>

#include "credentials.h"

/* Set by the host project: a different id makes a different image. */
#ifndef HOST_BUILD_ID
#define HOST_BUILD_ID "0"
#endif
__attribute__((used)) static const char build_id[] = "provguard host image " HOST_BUILD_ID;

int main(void)
{
	const struct provguard_credential *table;
	size_t count = provguard_credentials(&table);

	printf("credentials %u sec_tag %lld\n", (unsigned int)count,
	       (long long)provguard_credentials_sec_tag());
	for (size_t i = 0; i < count; i++) {
		printf("type %d len %u\n", (int)table[i].type, (unsigned int)table[i].len);
	}
	return 0;
}
