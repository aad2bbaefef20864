/*
 * hugetlb-hvo: grow and shrink the HugeTLB pool so that the HugeTLB Vmemmap Optimization
 * (HVO) remaps each hugepage's struct-page vmemmap when the page enters the pool and
 * restores it when the page is freed (on arm64 this rewrites live kernel page tables),
 * use the pages in between, and prove it with counters or fail.
 *
 * Each round raises nr_hugepages by up to 8 (at most a quarter of MemFree), requires
 * HugePages_Total to grow, maps a few of the pages with MAP_HUGETLB, requires
 * HugePages_Free to drop by as many, writes and checks a pattern, unmaps, lowers
 * nr_hugepages again and requires the pool to shrink back. When HVO is on, the vmemmap
 * pages in use (nr_memmap_pages + nr_memmap_boot_pages, /proc/vmstat) must drop when the
 * pool grows and come back when it shrinks. hugetlb_optimize_vmemmap is switched on for
 * the run if it is off. Every other size in /sys/kernel/mm/hugepages gets one round of
 * its own (a size that cannot be allocated is only noted). Every value written is put
 * back at exit, also on SIGTERM/SIGINT/SIGHUP.
 *
 * usage: hugetlb-hvo [rounds]
 * exit: 0 pool grew and shrank and data intact, 1 failure, 77 does not apply to this
 * kernel (no HugeTLB: no /proc/sys/vm/nr_hugepages or no Hugepagesize; or too little
 * free memory for one hugepage).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#define SKIP 77
#define NR "/proc/sys/vm/nr_hugepages"
#define HVO "/proc/sys/vm/hugetlb_optimize_vmemmap"
#define SYSHP "/sys/kernel/mm/hugepages"
#define PER_ROUND 8
#define MAP_MAX 4

/* every file written, with its value before the first write, put back in reverse order */
static struct saved {
	char path[128];
	char val[32];
} saved[16];
static int nsaved;

static void restore_all(void)
{
	for (int i = nsaved - 1; i >= 0; i--) {
		int fd = open(saved[i].path, O_WRONLY);

		if (fd < 0)
			continue;
		if (write(fd, saved[i].val, strlen(saved[i].val)) < 0)
			(void)0;	/* nothing better to do on the way out */
		close(fd);
	}
}

static void on_signal(int sig)
{
	restore_all();	/* open/write/close only: async-signal-safe */
	_exit(128 + sig);
}

static int rd(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return n > 0 ? 0 : -1;
}

static long rd_long(const char *path)
{
	char buf[32];

	return rd(path, buf, sizeof(buf)) ? -1 : atol(buf);
}

static int wr(const char *path, long v)
{
	char val[32];
	int fd, ok, i;

	for (i = 0; i < nsaved; i++)
		if (!strcmp(saved[i].path, path))
			break;
	if (i == nsaved && nsaved < (int)(sizeof(saved) / sizeof(saved[0])) &&
	    strlen(path) < sizeof(saved[0].path) &&
	    !rd(path, saved[nsaved].val, sizeof(saved[0].val))) {
		strcpy(saved[nsaved].path, path);
		nsaved++;
	}
	snprintf(val, sizeof(val), "%ld", v);
	fd = open(path, O_WRONLY);
	ok = fd >= 0 && write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	if (fd >= 0)
		close(fd);
	if (!ok)
		printf("hugetlb-hvo: note: %s <- %s failed: %s\n", path, val, strerror(errno));
	return ok ? 0 : -1;
}

static long keyed(const char *file, const char *key, char sep)
{
	char line[256];
	long v = -1;
	size_t n = strlen(key);
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == sep)
			v = atol(line + n + 1);
	fclose(f);
	return v;
}

static long meminfo(const char *key)
{
	return keyed("/proc/meminfo", key, ':');
}

/* vmemmap pages in use: HVO frees some when a page enters the pool, -1 if not reported */
static long memmap(void)
{
	long a = keyed("/proc/vmstat", "nr_memmap_pages", ' ');
	long b = keyed("/proc/vmstat", "nr_memmap_boot_pages", ' ');

	return a < 0 && b < 0 ? -1 : (a > 0 ? a : 0) + (b > 0 ? b : 0);
}

/* the kernel's own HugeTLB boot lines ("... vmemmap can be freed ..."), if still in the log */
static void kmsg_hugetlb(void)
{
	char rec[1024];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK), shown = 0;

	if (fd < 0)
		return;
	for (int i = 0; i < 100000 && shown < 8; i++) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		char *msg;

		if (n < 0 && errno == EPIPE)
			continue;	/* record overwritten while reading */
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		if (msg && strstr(msg, "HugeTLB")) {
			msg[strcspn(msg, "\n")] = 0;
			printf("hugetlb-hvo: kernel said: %s\n", msg + 1);
			shown++;
		}
	}
	close(fd);
}

struct size {
	long kb;
	char nr[128], free[128];	/* sysfs nr_hugepages and free_hugepages */
};

static long pool_total(const struct size *s, int dflt)
{
	return dflt ? meminfo("HugePages_Total") : rd_long(s->nr);
}

static long pool_free(const struct size *s, int dflt)
{
	return dflt ? meminfo("HugePages_Free") : rd_long(s->free);
}

static int ilog2(unsigned long v)
{
	int l = 0;

	while (v > 1) {
		v >>= 1;
		l++;
	}
	return l;
}

static uint64_t pattern(int round, size_t off, long kb)
{
	return ((uint64_t)round << 48) ^ (off * 0x9e3779b1ULL) ^ kb;
}

static int hvo_on;	/* hugetlb_optimize_vmemmap is 1 for the run */
static long allocated, freed, vm_freed, vm_restored;

/* 0 ok, 1 failure, 2 the pool did not grow (nothing else done) */
static int pool_round(const struct size *s, int dflt, long want, int round)
{
	const char *nr = dflt ? NR : s->nr;
	long base = pool_total(s, dflt), grown, shrunk, free0, free1, k;
	long m0 = memmap(), m1, m2;
	size_t len, bytes = (size_t)s->kb << 10;
	uint64_t *p;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, rc = 0;

	if (base < 0) {
		printf("hugetlb-hvo: cannot read the %ld kB pool size\n", s->kb);
		return 1;
	}
	if (wr(nr, base + want))
		return dflt ? 1 : 2;	/* gigantic sizes need CONTIG_ALLOC at runtime */
	grown = pool_total(s, dflt);
	m1 = memmap();
	if (grown <= base) {
		printf("hugetlb-hvo: round %d: %ld kB pool did not grow (%ld -> %ld, asked %ld)\n",
		       round, s->kb, base, grown, base + want);
		wr(nr, base);
		return 2;
	}
	allocated += grown - base;

	k = grown - base < MAP_MAX ? grown - base : MAP_MAX;
	if (bytes > (1UL << 30) / k)	/* keep the mapping within a 32-bit address space */
		k = bytes >= (1UL << 30) ? 1 : (1UL << 30) / bytes;
	len = k * bytes;
	if (!dflt)
		flags |= ilog2(bytes) << MAP_HUGE_SHIFT;
	free0 = pool_free(s, dflt);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p == MAP_FAILED) {
		printf("hugetlb-hvo: mmap(MAP_HUGETLB, %ld x %ld kB): %s\n", k, s->kb,
		       strerror(errno));
		rc = 1;
	} else {
		for (size_t off = 0; off < len; off += 4096)
			p[off / 8] = pattern(round, off, s->kb);
		free1 = pool_free(s, dflt);
		for (size_t off = 0; off < len; off += 4096)
			if (p[off / 8] != pattern(round, off, s->kb)) {
				printf("hugetlb-hvo: round %d: data wrong at offset %zu of %ld kB pages\n",
				       round, off, s->kb);
				rc = 1;
				break;
			}
		if (free0 - free1 != k) {
			printf("hugetlb-hvo: round %d: %ld kB pages free %ld -> %ld after touching %ld\n",
			       round, s->kb, free0, free1, k);
			rc = 1;
		}
		munmap(p, len);
	}

	if (wr(nr, base))
		rc = 1;
	shrunk = pool_total(s, dflt);
	m2 = memmap();
	freed += grown - shrunk;
	printf("hugetlb-hvo: round %d: %ld kB pool %ld -> %ld -> %ld, %ld mapped (%s), "
	       "vmemmap pages %ld -> %ld -> %ld\n", round, s->kb, base, grown, shrunk, k,
	       rc ? "BAD" : "data ok", m0, m1, m2);
	if (shrunk != base) {
		printf("hugetlb-hvo: round %d: %ld kB pool did not shrink back to %ld\n", round,
		       s->kb, base);
		rc = 1;
	}
	if (m0 >= 0) {
		vm_freed += m0 - m1;
		vm_restored += m2 - m1;
		if (dflt && hvo_on && (m1 >= m0 || m2 <= m1)) {
			printf("hugetlb-hvo: round %d: HVO is on but the vmemmap did not shrink "
			       "and grow back\n", round);
			rc = 1;
		}
	}
	return rc;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5, rc = 0, grew = 0, extra = 0;
	long memfree_kb, hvo_was, cap;
	struct size dflt = { 0 };
	char hvo[48];
	DIR *d;
	struct dirent *e;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (rounds < 1)
		rounds = 1;
	dflt.kb = meminfo("Hugepagesize");
	if (access(NR, F_OK) || dflt.kb <= 0) {
		printf("hugetlb-hvo: no %s or no Hugepagesize in /proc/meminfo: kernel without "
		       "CONFIG_HUGETLBFS, does not apply\n", NR);
		return SKIP;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	kmsg_hugetlb();

	hvo_was = rd_long(HVO);
	if (access(HVO, F_OK)) {
		snprintf(hvo, sizeof(hvo), "absent");
		printf("hugetlb-hvo: note: no %s: kernel without CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP "
		       "(or no optimizable size): pool churn only\n", HVO);
	} else {
		if (hvo_was == 0)
			wr(HVO, 1);
		hvo_on = rd_long(HVO) == 1;
		snprintf(hvo, sizeof(hvo), "%d", hvo_on);
		if (hvo_was == 0)
			snprintf(hvo, sizeof(hvo), "%d(was 0)", hvo_on);
		printf("hugetlb-hvo: hugetlb_optimize_vmemmap %ld%s\n", hvo_was,
		       hvo_was == 0 ? (hvo_on ? ", switched on for the run" : ", cannot switch on") : "");
	}
	if (memmap() < 0)
		printf("hugetlb-hvo: note: no nr_memmap_pages in /proc/vmstat (kernel < 6.8): "
		       "HVO cannot be measured\n");

	memfree_kb = meminfo("MemFree");
	cap = memfree_kb / 4 / dflt.kb;
	printf("hugetlb-hvo: default hugepage %ld kB, MemFree %ld kB, %ld per round\n", dflt.kb,
	       memfree_kb, cap < PER_ROUND ? cap : PER_ROUND);
	if (cap < 1) {
		printf("hugetlb-hvo: not even one %ld kB hugepage fits in a quarter of MemFree: "
		       "does not apply\n", dflt.kb);
		restore_all();
		return SKIP;
	}
	for (int r = 1; r <= rounds; r++) {
		int res = pool_round(&dflt, 1, cap < PER_ROUND ? cap : PER_ROUND, r);

		if (res == 1)
			rc = 1;
		if (res != 2)
			grew++;
	}
	if (!grew) {
		printf("hugetlb-hvo: the %ld kB pool never grew\n", dflt.kb);
		rc = 1;
	}

	/* one round for each other size (64K/32M contpte sizes, 1G, ... ) */
	d = opendir(SYSHP);
	while (d && (e = readdir(d))) {
		struct size s = { 0 };
		long want;
		int res;

		if (sscanf(e->d_name, "hugepages-%ldkB", &s.kb) != 1 || s.kb == dflt.kb)
			continue;
		snprintf(s.nr, sizeof(s.nr), SYSHP "/%.40s/nr_hugepages", e->d_name);
		snprintf(s.free, sizeof(s.free), SYSHP "/%.40s/free_hugepages", e->d_name);
		want = memfree_kb / 4 / s.kb < 2 ? memfree_kb / 4 / s.kb : 2;
		if (want < 1) {
			printf("hugetlb-hvo: note: %ld kB pages do not fit in a quarter of MemFree: "
			       "skipped\n", s.kb);
			continue;
		}
		res = pool_round(&s, 0, want, ++extra + rounds);
		if (res == 1)
			rc = 1;
		else if (res == 2)
			printf("hugetlb-hvo: note: could not allocate %ld kB pages (fragmented?): "
			       "not a failure\n", s.kb);
	}
	if (d)
		closedir(d);

	restore_all();
	printf("hugetlb-hvo: rounds=%d allocated=%ld freed=%ld hvo=%s vmemmap_freed=%ld "
	       "vmemmap_restored=%ld other_sizes=%d\n", rounds, allocated, freed, hvo,
	       vm_freed, vm_restored, extra);
	return rc;
}
