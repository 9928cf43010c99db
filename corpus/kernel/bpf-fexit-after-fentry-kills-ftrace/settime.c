/* Calls security_settime64() once: settimeofday(NULL, NULL) checks the permission and sets
 * nothing. Prints the return value and errno. */
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void)
{
	long r = syscall(SYS_settimeofday, NULL, NULL);
	printf("settimeofday: %ld errno %d\n", r, r < 0 ? errno : 0);
	return 0;
}
