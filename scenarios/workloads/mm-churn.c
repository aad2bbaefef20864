/*
 * mm-churn: fork/mmap/mprotect/mremap/munmap churn that checks its own data.
 *
 * Every child maps anonymous memory, fills it with a pattern, flips protections,
 * grows it with mremap (which may move the page tables: move_page_tables), forks a
 * grandchild that reads it back (copy_pte_range), and unmaps. Any mismatch or failed
 * syscall is a workload failure (exit 1), so silent page-table corruption is caught
 * even when the kernel prints nothing.
 *
 * usage: mm-churn [iterations] [megabytes]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int check(const unsigned char *p, size_t len, unsigned char seed)
{
	for (size_t off = 0; off < len; off += 4096)
		if (p[off] != (unsigned char)(seed + off / 4096))
			return -1;
	return 0;
}

static void fill(unsigned char *p, size_t len, unsigned char seed)
{
	for (size_t off = 0; off < len; off += 4096)
		p[off] = (unsigned char)(seed + off / 4096);
}

static int one_round(int i, size_t len)
{
	unsigned char seed = (unsigned char)i;
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED) {
		printf("mm-churn: mmap: %s\n", strerror(errno));
		return 1;
	}
	fill(m, len, seed);
	if (mprotect(m, len, PROT_READ) || mprotect(m, len, PROT_READ | PROT_WRITE)) {
		printf("mm-churn: mprotect: %s\n", strerror(errno));
		return 1;
	}
	unsigned char *n = mremap(m, len, 2 * len, MREMAP_MAYMOVE);
	if (n == MAP_FAILED) {
		printf("mm-churn: mremap: %s\n", strerror(errno));
		return 1;
	}
	if (check(n, len, seed)) {
		printf("mm-churn: data lost across mremap in round %d\n", i);
		return 1;
	}
	fill(n + len, len, seed + 7);
	pid_t p = fork();
	if (p == 0)
		_exit(check(n, len, seed) || check(n + len, len, seed + 7) ? 3 : 0);
	int st = 0;
	if (p < 0 || waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("mm-churn: grandchild saw wrong data (status %d) in round %d\n", st, i);
		return 1;
	}
	fill(n, len, seed + 1); /* COW after fork */
	if (check(n, len, seed + 1) || munmap(n, 2 * len)) {
		printf("mm-churn: COW/munmap failed in round %d\n", i);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int iterations = argc > 1 ? atoi(argv[1]) : 200;
	size_t len = (size_t)(argc > 2 ? atoi(argv[2]) : 4) << 20;
	int failures = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	for (int i = 0; i < iterations; i++) {
		pid_t p = fork();
		int st = 0;

		if (p == 0)
			_exit(one_round(i, len));
		if (p < 0 || waitpid(p, &st, 0) < 0) {
			printf("mm-churn: fork/wait: %s\n", strerror(errno));
			return 1;
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			printf("mm-churn: round %d failed (status 0x%x)\n", i, st);
			failures++;
		}
		if ((i + 1) % 10 == 0)	/* progress, so a slow TCG guest is not taken for a hang */
			printf("mm-churn: %d/%d rounds\n", i + 1, iterations);
	}
	printf("mm-churn: %d rounds of %zu MB, %d failed\n", iterations, len >> 20, failures);
	return failures ? 1 : 0;
}
