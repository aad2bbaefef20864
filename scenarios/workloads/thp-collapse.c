/*
 * thp-collapse: make khugepaged / MADV_COLLAPSE collapse small pages into a PMD-sized
 * THP, and prove it happened (smaps of the exact range, /proc/vmstat counters), or fail.
 *
 * usage: thp-collapse madvise-anon | madvise-shmem | khugepaged [seconds]
 * exit: 0 collapsed and data intact, 1 failure, 77 does not apply to this kernel
 * (no THP, no madvise, no MADV_COLLAPSE, no memfd).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define SKIP 77
#define THP "/sys/kernel/mm/transparent_hugepage"

static unsigned long hpage;

static int wr(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	int ok = fd >= 0 && write(fd, val, strlen(val)) == (ssize_t)strlen(val);

	if (fd >= 0)
		close(fd);
	if (!ok)
		printf("thp-collapse: note: %s <- %s failed: %s\n", path, val, strerror(errno));
	return ok ? 0 : -1;
}

static long vmstat(const char *key)
{
	char line[256];
	long v = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ' ')
			v = atol(line + n + 1);
	fclose(f);
	return v;
}

/* kB of PMD-mapped memory in the VMA that starts at addr ("AnonHugePages" etc.) */
static long smaps_kb(void *addr, const char *field)
{
	char line[512], want[32];
	int in = 0;
	long kb = -1;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' ') && line[0] != ' ' &&
		    strncmp(line, field, n))
			in = !strncmp(line, want, strlen(want));
		else if (in && !strncmp(line, field, n) && line[n] == ':')
			kb = atol(line + n + 1);
	}
	fclose(f);
	return kb;
}

static char *aligned(size_t len, int prot, int flags, int fd)
{
	char *p = mmap(NULL, len + hpage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((unsigned long)p + hpage - 1) & ~(hpage - 1));
	munmap(p, a - p);
	munmap(a + len, (p + len + hpage) - (a + len));
	a = mmap(a, len, prot, flags | MAP_FIXED, fd, 0);
	return a == MAP_FAILED ? NULL : a;
}

static void fill(char *a, size_t len)
{
	for (size_t off = 0; off < len; off += 4096)
		a[off] = (char)(off / 4096 + 1);
}

static int intact(char *a, size_t len)
{
	for (size_t off = 0; off < len; off += 4096)
		if (a[off] != (char)(off / 4096 + 1)) {
			printf("thp-collapse: data changed at offset %zu after collapse\n", off);
			return 0;
		}
	return 1;
}

static int do_madvise(int shmem)
{
	int fd = -1;
	char *a;
	long before = vmstat("thp_collapse_alloc"), after, kb;
	const char *field = shmem ? "ShmemPmdMapped" : "AnonHugePages";

	wr(THP "/enabled", "madvise");
	if (shmem) {
		wr(THP "/shmem_enabled", "advise");
		fd = syscall(SYS_memfd_create, "thp-collapse", 0);
		if (fd < 0) {
			printf("thp-collapse: memfd_create: %s: does not apply\n", strerror(errno));
			return SKIP;
		}
		if (ftruncate(fd, hpage)) {
			printf("thp-collapse: ftruncate: %s\n", strerror(errno));
			return 1;
		}
		a = aligned(hpage, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
	} else {
		a = aligned(hpage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	}
	if (!a) {
		printf("thp-collapse: mmap: %s\n", strerror(errno));
		return 1;
	}
	if (madvise(a, hpage, MADV_NOHUGEPAGE) && errno == ENOSYS) {
		printf("thp-collapse: madvise() is ENOSYS (no CONFIG_ADVISE_SYSCALLS): does not apply\n");
		return SKIP;
	}
	fill(a, hpage);
	madvise(a, hpage, MADV_HUGEPAGE);
	/* EAGAIN is transient (pages still in per-CPU LRU batches, locked): retry */
	int rc = -1;

	for (int i = 0; i < 20; i++) {
		rc = madvise(a, hpage, MADV_COLLAPSE);
		if (!rc || errno != EAGAIN)
			break;
		if (i == 0)
			printf("thp-collapse: MADV_COLLAPSE(%s): EAGAIN, retrying\n",
			       shmem ? "shmem" : "anon");
		usleep(100000);
	}
	if (rc) {
		if (errno == EINVAL) {
			printf("thp-collapse: MADV_COLLAPSE not supported (EINVAL): does not apply\n");
			return SKIP;
		}
		printf("thp-collapse: MADV_COLLAPSE(%s) failed: %s\n", shmem ? "shmem" : "anon",
		       strerror(errno));
		return 1;
	}
	after = vmstat("thp_collapse_alloc");
	kb = smaps_kb(a, field);
	printf("thp-collapse: MADV_COLLAPSE(%s) ok; %s %ld kB; thp_collapse_alloc %ld -> %ld\n",
	       shmem ? "shmem" : "anon", field, kb, before, after);
	if (!intact(a, hpage))
		return 1;
	if (kb * 1024 >= (long)hpage || (before >= 0 && after > before))
		return 0;
	printf("thp-collapse: no evidence of a collapse\n");
	return 1;
}

static int do_khugepaged(int seconds)
{
	size_t len = 4 * hpage;
	char *a;
	long before = vmstat("thp_collapse_alloc"), after = before, kb = 0;

	wr(THP "/enabled", "madvise");
	wr(THP "/defrag", "madvise");
	wr(THP "/khugepaged/scan_sleep_millisecs", "10");
	wr(THP "/khugepaged/alloc_sleep_millisecs", "10");
	wr(THP "/khugepaged/pages_to_scan", "4096");
	wr(THP "/khugepaged/max_ptes_none", "511");
	a = aligned(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (!a) {
		printf("thp-collapse: mmap: %s\n", strerror(errno));
		return 1;
	}
	if (madvise(a, len, MADV_NOHUGEPAGE) && errno == ENOSYS) {
		printf("thp-collapse: madvise() is ENOSYS (no CONFIG_ADVISE_SYSCALLS): does not apply\n");
		return SKIP;
	}
	fill(a, len);	/* small pages first */
	madvise(a, len, MADV_HUGEPAGE);	/* registers the mm with khugepaged */
	for (int i = 0; i < seconds * 10; i++) {
		usleep(100000);
		after = vmstat("thp_collapse_alloc");
		kb = smaps_kb(a, "AnonHugePages");
		if (kb * 1024 >= (long)hpage)
			break;
	}
	printf("thp-collapse: khugepaged: AnonHugePages %ld kB; thp_collapse_alloc %ld -> %ld\n",
	       kb, before, after);
	if (!intact(a, len))
		return 1;
	if (kb * 1024 >= (long)hpage)
		return 0;
	printf("thp-collapse: khugepaged collapsed nothing in %d s\n", seconds);
	return 1;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "madvise-anon";
	char buf[64] = "";
	int fd;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (access(THP, F_OK)) {
		printf("thp-collapse: %s missing: kernel without CONFIG_TRANSPARENT_HUGEPAGE, "
		       "does not apply\n", THP);
		return SKIP;
	}
	fd = open(THP "/hpage_pmd_size", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0) {
		printf("thp-collapse: cannot read hpage_pmd_size\n");
		return 1;
	}
	close(fd);
	hpage = strtoul(buf, NULL, 10);
	printf("thp-collapse: mode %s, PMD size %lu kB\n", mode, hpage >> 10);
	if (!strcmp(mode, "madvise-anon"))
		return do_madvise(0);
	if (!strcmp(mode, "madvise-shmem"))
		return do_madvise(1);
	if (!strcmp(mode, "khugepaged"))
		return do_khugepaged(argc > 2 ? atoi(argv[2]) : 60);
	printf("thp-collapse: unknown mode %s\n", mode);
	return 2;
}
