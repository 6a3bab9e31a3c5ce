/* The smallest end-to-end check: boot, console, command line, exit code. */
#include "guest.h"

int main(void)
{
	printf("hello from xover guest\n");
	printf("cmdline: %s\n", cmdline());
	return 0;
}
