/* A host "image" for tests/firmware/sysbuild-host: carries the payload text of its build. */

#include <stdio.h>

#include "payload.h"

int main(void)
{
	return puts(payload) < 0;
}
