/*
 * lazy-mmu-stress: drive the page-table walkers that batch PTE updates in lazy MMU mode
 * (arch_enter/leave_lazy_mmu_mode; lazy_mmu_mode_enable/disable in 7.x) from several
 * processes at once, so that nesting and preemption bugs in the lazy MMU implementations
 * (Xen PV, sparc, powerpc) fire, and check the data after every step.
 *
 * Every worker loops until the deadline over:
 *   fork        copy_pte_range: the child checks the pattern and writes it (COW), the parent
 *               writes half of it meanwhile; both copies are checked
 *   mprotect    change_pte_range: RW -> RO -> RW, whole region or its middle half
 *   mremap      move_ptes: MREMAP_FIXED to an address at another offset within its PMD (so
 *               whole page tables cannot be moved instead) and back, data checked there
 *   munmap      zap_pte_range: mmap + memset + munmap, and MADV_DONTNEED
 *   madvise     madvise_cold_or_pageout_pte_range / madvise_free_pte_range: MADV_COLD,
 *               MADV_PAGEOUT, MADV_FREE
 *   pagemap     pagemap_scan_pmd_entry: PAGEMAP_SCAN of itself and of the toucher, and with
 *               userfaultfd async write-protect (PM_SCAN_WP_MATCHING): exactly the pages
 *               written since the previous scan must be reported
 *   uffd move   move_present_ptes: UFFDIO_MOVE of a region to another and back
 *   clear_refs  clear_refs_pte_range: "1" and "4" to /proc/<toucher>/clear_refs (a process
 *               that keeps writing its memory and checks it) and "1" to a sibling worker's
 * The counts printed at the end prove each path ran: one the kernel offers that ran zero
 * times is a failure. Optional features (PAGEMAP_SCAN, userfaultfd async write-protect,
 * UFFDIO_MOVE, MADV_COLD/PAGEOUT/FREE, clear_refs) that the kernel lacks are skipped with
 * a note. LAZY_MMU_STRESS_SKIP=scan,wp,move,madvise,refs pretends they are missing.
 *
 * usage: lazy-mmu-stress [seconds] [procs]	(default 20 s, 2 workers, plus the toucher)
 * exit: 0 every path ran and all data checks passed, 1 failure (wrong data, unexpected
 * errno, a process killed, a path that never ran), 77 does not apply (no fork or mremap).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PAGEMAP_SCAN
/* include/uapi/linux/fs.h of Linux 6.7+ (Debian bookworm's headers are 6.1) */
#define PAGEMAP_SCAN		_IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WPALLOWED	(1 << 0)
#define PAGE_IS_WRITTEN		(1 << 1)
#define PAGE_IS_FILE		(1 << 2)
#define PAGE_IS_PRESENT		(1 << 3)
#define PAGE_IS_SWAPPED		(1 << 4)
#define PAGE_IS_PFNZERO		(1 << 5)
#define PAGE_IS_HUGE		(1 << 6)
#define PAGE_IS_SOFT_DIRTY	(1 << 7)
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};
#define PM_SCAN_WP_MATCHING	(1 << 0)
#define PM_SCAN_CHECK_WPASYNC	(1 << 1)
struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY	1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED	(1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC	(1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE	(1 << 16)
#endif
#ifndef UFFDIO_MOVE
/* include/uapi/linux/userfaultfd.h of Linux 6.8+ */
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
	__u64 mode;
	__s64 move;
};
#define UFFDIO_MOVE		_IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif
#ifndef MADV_COLD
#define MADV_COLD	20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif

#define SKIP		77
#define REGION		(1UL << 20)	/* main, scratch and write-protect regions */
#define RESERVE		(8UL << 20)	/* PROT_NONE window that mremap moves into */
#define PMD_GUESS	(2UL << 20)	/* PMD size on x86_64, arm64/4k, arm */
#define MOVE_LEN	(256UL << 10)	/* each UFFDIO_MOVE region */
#define TOUCH_LEN	(1UL << 20)	/* the toucher's memory */
#define MAX_PROCS	64
#define PM_PRESENT	(1ULL << 63)
#define PM_SWAP		(1ULL << 62)

struct counts {
	long iterations, forks, mprotects, mremaps, munmaps, madvises, scans, wp_scans, wp_pages,
	     clear_refs, uffd_moves;
};

struct shared {
	volatile int stop;		/* workers: finish the iteration and exit */
	volatile int toucher_stop;	/* set once no worker is left */
	volatile pid_t pids[MAX_PROCS];
	struct counts c[MAX_PROCS];
};

static struct shared *sh;
static size_t ps;		/* page size */
static size_t npages;		/* pages in REGION */
static int procs;
static struct timespec t0;
static int seconds;
static int have_scan, have_wp, have_move, have_cold, have_pageout, have_free, have_refs;
static int have_dontneed;	/* madvise() itself: tinyconfig without ADVISE_SYSCALLS lacks it */
static char *tmem;		/* the toucher's memory, mapped before any fork */
static pid_t toucher;

/* per worker */
static int me;
static long it;
static struct counts *my;
static int pm_fd = -1;		/* /proc/self/pagemap of this worker */

static double elapsed(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
}

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	char msg[512];
	int n = 0;
	va_list ap;

	if (me >= 0)
		n = snprintf(msg, sizeof(msg), "worker %d iteration %ld: ", me, it);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	va_end(ap);
	printf("lazy-mmu-stress: FAIL: %s\n", msg);	/* one write: workers interleave */
	sh->stop = 1;
	_exit(1);
}

static int skipped(const char *what)
{
	const char *env = getenv("LAZY_MMU_STRESS_SKIP");

	if (!env || !strstr(env, what))
		return 0;
	printf("lazy-mmu-stress: note: %s treated as unavailable (LAZY_MMU_STRESS_SKIP)\n", what);
	return 1;
}

/* the errnos that mean "this kernel lacks the feature" */
static int missing(int e)
{
	return e == ENOSYS || e == EINVAL || e == ENOTTY || e == EPERM || e == EOPNOTSUPP ||
	       e == ENOENT;
}

static char *anon(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fail("mmap %zu: %s", len, strerror(errno));
	madvise(p, len, MADV_NOHUGEPAGE);	/* PTE-mapped, so the pte walkers run */
	return p;
}

/* the pattern: page at offset off starts with pat() and ends with ~pat() */
static unsigned int pat(unsigned int seed, size_t off)
{
	return seed * 2654435761u + (unsigned int)(off / ps) + 1;
}

static void fill(char *p, size_t len, unsigned int seed)
{
	for (size_t off = 0; off < len; off += ps) {
		*(unsigned int *)(p + off) = pat(seed, off);
		*(unsigned int *)(p + off + ps - 4) = ~pat(seed, off);
	}
}

static void fill_page(char *p, size_t off, unsigned int seed)
{
	*(unsigned int *)(p + off) = pat(seed, off);
	*(unsigned int *)(p + off + ps - 4) = ~pat(seed, off);
}

/* first page in [from, to) of the region at p without the pattern, or -1 */
static long bad_range(const char *p, size_t from, size_t to, unsigned int seed)
{
	for (size_t off = from; off < to; off += ps)
		if (*(const unsigned int *)(p + off) != pat(seed, off) ||
		    *(const unsigned int *)(p + off + ps - 4) != ~pat(seed, off))
			return off / ps;
	return -1;
}

static long bad_page(const char *p, size_t len, unsigned int seed)
{
	return bad_range(p, 0, len, seed);
}

static void verify_range(const char *p, size_t from, size_t to, unsigned int seed,
			 const char *what)
{
	long i = bad_range(p, from, to, seed);
	const unsigned int *w;

	if (i < 0)
		return;
	w = (const unsigned int *)(p + i * ps);
	fail("%s: page %ld of %p holds %08x..%08x, want %08x..%08x", what, i, (void *)p,
	     w[0], w[ps / 4 - 1], pat(seed, i * ps), ~pat(seed, i * ps));
}

static void verify(const char *p, size_t len, unsigned int seed, const char *what)
{
	verify_range(p, 0, len, seed, what);
}

static int scan(int fd, const void *start, size_t len, unsigned long long flags,
		unsigned long long mask, unsigned long long anyof, unsigned long long ret_mask,
		struct page_region *vec, size_t vec_len, unsigned long long *walk_end)
{
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = flags,
		.start = (uintptr_t)start,
		.end = (uintptr_t)start + len,
		.vec = (uintptr_t)vec,
		.vec_len = vec_len,
		.category_mask = mask,
		.category_anyof_mask = anyof,
		.return_mask = ret_mask,
	};
	int n = ioctl(fd, PAGEMAP_SCAN, &a);

	if (walk_end)
		*walk_end = a.walk_end;
	return n;
}

static int uffd_open(unsigned long long features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY), e;

	if (fd < 0 && errno == EINVAL)	/* before 5.11: no UFFD_USER_MODE_ONLY */
		fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (ioctl(fd, UFFDIO_API, &api)) {
		e = errno;
		close(fd);
		errno = e;
		return -2;
	}
	return fd;
}

static int uffd_register(int fd, void *p, size_t len, unsigned long long mode)
{
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = mode,
	};

	return ioctl(fd, UFFDIO_REGISTER, &r);
}

/* async write-protect uffd: WP_UNPOPULATED where the kernel knows it (6.12 implies it) */
static int uffd_wp_open(void)
{
	int fd = uffd_open(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED);

	if (fd == -2 && errno == EINVAL)
		fd = uffd_open(UFFD_FEATURE_WP_ASYNC);
	return fd;
}

/* number of pages in [p, p+len) for which pagemap says present or swapped, or -1 */
static long mapped_pages(const char *p, size_t len)
{
	uint64_t e[64];
	long n = 0;

	for (size_t i = 0; i < len / ps; i += 64) {
		size_t k = len / ps - i < 64 ? len / ps - i : 64;
		off_t off = ((uintptr_t)p / ps + i) * sizeof(uint64_t);

		if (pread(pm_fd, e, k * sizeof(uint64_t), off) != (ssize_t)(k * sizeof(uint64_t)))
			return -1;
		for (size_t j = 0; j < k; j++)
			n += !!(e[j] & (PM_PRESENT | PM_SWAP));
	}
	return n;
}

/* ---------------------------------------------------------------- the paths */

static void do_fork(char *r, unsigned int seed)
{
	size_t half = REGION / 2;
	pid_t pid;
	int st = 0;

	fill(r, REGION, seed);
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		long i = bad_page(r, REGION, seed);

		if (i >= 0) {
			printf("lazy-mmu-stress: FAIL: worker %d: fork child: wrong data in page %ld\n",
			       me, i);
			_exit(3);
		}
		fill(r, REGION, seed + 1);	/* COW in the child */
		_exit(bad_page(r, REGION, seed + 1) >= 0 ? 4 : 0);
	}
	fill(r, half, seed + 2);		/* COW in the parent, while the child reads */
	if (waitpid(pid, &st, 0) != pid)
		fail("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail("fork child failed (status 0x%x)", st);
	verify_range(r, 0, half, seed + 2, "parent's first half after fork");
	verify_range(r, half, REGION, seed, "parent's second half after fork");
	my->forks++;
}

static void do_mprotect(char *r, unsigned int seed)
{
	char *p = it & 1 ? r + REGION / 4 : r;
	size_t len = it & 1 ? REGION / 2 : REGION;

	fill(r, REGION, seed);
	if (mprotect(p, len, PROT_READ))
		fail("mprotect RO: %s", strerror(errno));
	verify(r, REGION, seed, "after mprotect RW->RO");
	if (mprotect(p, len, PROT_READ | PROT_WRITE))
		fail("mprotect RW: %s", strerror(errno));
	verify(r, REGION, seed, "after mprotect RO->RW");
	fill(r, REGION, seed + 1);
	verify(r, REGION, seed + 1, "writing after mprotect RO->RW");
	my->mprotects++;
}

static void do_mremap(char *r, char *res, unsigned int seed)
{
	unsigned long base = ((uintptr_t)res + PMD_GUESS - 1) & ~(PMD_GUESS - 1);
	/* another offset within the PMD than r's: move_ptes, not move_normal_pmd */
	unsigned long off = ((uintptr_t)r + (1 + it % 31) * ps) & (PMD_GUESS - 1);
	char *dst = (char *)(base + off), *p;

	fill(r, REGION, seed);
	p = mremap(r, REGION, REGION, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (p != dst)
		fail("mremap %p -> %p: %s", (void *)r, (void *)dst, strerror(errno));
	verify(dst, REGION, seed, "at the new address after mremap");
	fill(dst, REGION, seed + 1);
	p = mremap(dst, REGION, REGION, MREMAP_MAYMOVE | MREMAP_FIXED, r);
	if (p != r)
		fail("mremap back %p -> %p: %s", (void *)dst, (void *)r, strerror(errno));
	verify(r, REGION, seed + 1, "back at the old address after mremap");
	/* refill the hole, so no other mapping lands where the next move goes */
	if (mmap(res, RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
		 -1, 0) != res)
		fail("mmap reserve: %s", strerror(errno));
	my->mremaps += 2;
}

static void madv(char *s, int advice, const char *name)
{
	if (madvise(s, REGION, advice))
		fail("madvise(%s): %s", name, strerror(errno));
	my->madvises++;
}

static void do_scratch(unsigned int seed)
{
	char *s = anon(REGION);

	memset(s, 0x5a, REGION);
	for (size_t off = 0; off < REGION; off += ps)
		if (s[off] != 0x5a || s[off + ps - 1] != 0x5a)
			fail("memset region reads back wrong at %zu", off);
	fill(s, REGION, seed);
	if (have_cold) {
		madv(s, MADV_COLD, "MADV_COLD");
		verify(s, REGION, seed, "after MADV_COLD");
	}
	if (have_pageout) {
		madv(s, MADV_PAGEOUT, "MADV_PAGEOUT");
		verify(s, REGION, seed, "after MADV_PAGEOUT");
	}
	if (have_free) {
		madv(s, MADV_FREE, "MADV_FREE");
		/* each page either kept or reclaimed to zero */
		for (size_t off = 0; off < REGION; off += ps) {
			unsigned int a = *(unsigned int *)(s + off);
			unsigned int b = *(unsigned int *)(s + off + ps - 4);

			if ((a && a != pat(seed, off)) || (b && b != ~pat(seed, off)))
				fail("after MADV_FREE page %zu holds %08x..%08x", off / ps, a, b);
		}
		fill(s, REGION, seed + 1);
		verify(s, REGION, seed + 1, "writing after MADV_FREE");
	}
	if (have_dontneed) {
		madv(s, MADV_DONTNEED, "MADV_DONTNEED");
		for (size_t off = 0; off < REGION; off += ps)
			if (*(unsigned int *)(s + off) || *(unsigned int *)(s + off + ps - 4))
				fail("page %zu not zero after MADV_DONTNEED", off / ps);
	}
	memset(s, 0xa5, REGION);
	if (munmap(s, REGION))
		fail("munmap: %s", strerror(errno));
	my->munmaps++;
}

/* the regions must lie in [p, p+len), in order; returns the pages they cover */
static long covered(struct page_region *v, int n, const char *p, size_t len, const char *what)
{
	long pages = 0;
	uint64_t prev = (uintptr_t)p;

	for (int i = 0; i < n; i++) {
		if (v[i].start < prev || v[i].end <= v[i].start || v[i].end > (uintptr_t)p + len ||
		    v[i].start % ps || v[i].end % ps)
			fail("%s: bad region %d [%llx, %llx) for [%p, %p)", what, i,
			     (unsigned long long)v[i].start, (unsigned long long)v[i].end,
			     (void *)p, (void *)(p + len));
		pages += (v[i].end - v[i].start) / ps;
		prev = v[i].end;
	}
	return pages;
}

static void do_scan(char *r, int tfd, struct page_region *vec)
{
	unsigned long long any = PAGE_IS_PRESENT | PAGE_IS_SWAPPED, end;
	int n = scan(pm_fd, r, REGION, 0, 0, any, any, vec, npages, &end);
	long pages;

	if (n < 0)
		fail("PAGEMAP_SCAN of the main region: %s", strerror(errno));
	pages = covered(vec, n, r, REGION, "PAGEMAP_SCAN of the main region");
	if (pages != (long)npages || end != (uintptr_t)r + REGION)
		fail("PAGEMAP_SCAN found %ld of %zu populated pages (walk_end %llx)", pages, npages,
		     end);
	my->scans++;
	if (tfd < 0)
		return;
	/* the toucher's memory, while it writes it and siblings clear its refs */
	n = scan(tfd, tmem, TOUCH_LEN, 0, 0, any, any, vec, npages, NULL);
	if (n < 0 && errno == ESRCH && sh->stop)
		return;			/* the toucher failed, and said so */
	if (n < 0)
		fail("PAGEMAP_SCAN of the toucher: %s", strerror(errno));
	covered(vec, n, tmem, TOUCH_LEN, "PAGEMAP_SCAN of the toucher");
	my->scans++;
}

/* write-protecting scan of the uffd-wp region; the pages reported must be exactly want[] */
static void wp_scan(char *u, struct page_region *vec, const char *want, const char *what)
{
	/* the fast path (mask == return mask == WRITTEN) or the generic loop */
	unsigned long long ret_mask = it & 1 ? PAGE_IS_WRITTEN | PAGE_IS_PRESENT | PAGE_IS_SWAPPED
					     : PAGE_IS_WRITTEN;
	unsigned long long end;
	int n = scan(pm_fd, u, REGION, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		     PAGE_IS_WRITTEN, 0, ret_mask, vec, npages, &end);
	char got[npages];

	if (n < 0)
		fail("PAGEMAP_SCAN write-protect (%s): %s", what, strerror(errno));
	if (end != (uintptr_t)u + REGION)
		fail("PAGEMAP_SCAN write-protect (%s) stopped at %llx", what, end);
	covered(vec, n, u, REGION, what);
	memset(got, 0, npages);
	for (int i = 0; i < n; i++) {
		unsigned long long c = vec[i].categories;

		if (!(c & PAGE_IS_WRITTEN) || (c & ~ret_mask) ||
		    (ret_mask != PAGE_IS_WRITTEN && !(c & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED))))
			fail("PAGEMAP_SCAN write-protect (%s): region %d categories 0x%llx",
			     what, i, c);
		for (uint64_t a = vec[i].start; a < vec[i].end; a += ps)
			got[(a - (uintptr_t)u) / ps] = 1;
		my->wp_pages += (vec[i].end - vec[i].start) / ps;
	}
	for (size_t i = 0; i < npages; i++)
		if (got[i] != want[i])
			fail("PAGEMAP_SCAN write-protect (%s): page %zu %s, but was %s", what, i,
			     got[i] ? "reported written" : "not reported",
			     want[i] ? "written" : "not written");
	my->wp_scans++;
	my->scans++;
}

static void do_wp(char *u, struct page_region *vec, unsigned int seed)
{
	char want[npages];

	fill(u, REGION, seed);
	memset(want, 1, npages);
	wp_scan(u, vec, want, "all pages written");
	for (size_t i = 0; i < npages; i++) {
		want[i] = (i * 7 + it) % 3 == 0;
		if (want[i])
			fill_page(u, i * ps, seed + 1);
	}
	wp_scan(u, vec, want, "a third of the pages written");
	for (size_t i = 0; i < npages; i++) {
		unsigned int s = (i * 7 + it) % 3 == 0 ? seed + 1 : seed;

		if (*(unsigned int *)(u + i * ps) != pat(s, i * ps) ||
		    *(unsigned int *)(u + i * ps + ps - 4) != ~pat(s, i * ps))
			fail("write-protect region: page %zu holds %08x, want %08x", i,
			     *(unsigned int *)(u + i * ps), pat(s, i * ps));
	}
	memset(want, 0, npages);
	wp_scan(u, vec, want, "nothing written");
}

static void uffd_move(int fd, char *dst, char *src, unsigned int seed)
{
	struct uffdio_move mv = {
		.dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = MOVE_LEN, .mode = 0,
	};
	long moved = 0, m;

	for (int tries = 0; moved < (long)MOVE_LEN; tries++) {
		mv.dst = (uintptr_t)dst + moved;
		mv.src = (uintptr_t)src + moved;
		mv.len = MOVE_LEN - moved;
		mv.move = 0;
		if (!ioctl(fd, UFFDIO_MOVE, &mv)) {
			moved += mv.move;
			continue;
		}
		if (mv.move > 0)
			moved += mv.move;
		if (errno != EAGAIN || tries > 1000)
			fail("UFFDIO_MOVE %p -> %p: %s (moved %ld of %lu)", (void *)src, (void *)dst,
			     strerror(errno), moved, MOVE_LEN);
	}
	verify(dst, MOVE_LEN, seed, "after UFFDIO_MOVE");
	m = pm_fd < 0 ? 0 : mapped_pages(src, MOVE_LEN);
	if (m)
		fail("UFFDIO_MOVE left %ld pages at the source (pagemap)", m);
	my->uffd_moves++;
}

static void do_move(int fd, char *a, char *b, unsigned int *cur, unsigned int seed)
{
	uffd_move(fd, b, a, *cur);
	fill(b, MOVE_LEN, seed);
	uffd_move(fd, a, b, seed);
	*cur = seed;
}

static int refs_write(int fd, const char *val)
{
	return write(fd, val, 1) == 1 ? 0 : -1;
}

static void do_clear_refs(int tref)
{
	char path[64];
	pid_t sib;
	int fd;

	if (refs_write(tref, it & 1 ? "4" : "1")) {	/* soft-dirty, or referenced bits */
		if (errno == ESRCH && sh->stop)
			return;		/* the toucher failed, and said so */
		fail("write to /proc/%d/clear_refs: %s", (int)toucher, strerror(errno));
	}
	my->clear_refs++;
	sib = procs > 1 ? sh->pids[(me + 1) % procs] : 0;
	if (!sib)
		return;
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)sib);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return;			/* the sibling may have finished */
	if (!refs_write(fd, "1"))
		my->clear_refs++;
	else if (errno != ESRCH)
		fail("write to %s: %s", path, strerror(errno));
	close(fd);
}

static int worker(void)
{
	struct page_region *vec = calloc(npages, sizeof(*vec));
	char *r = anon(REGION), *u = NULL, *ma = NULL, *mb = NULL, path[64];
	char *res = mmap(NULL, RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			 -1, 0);
	int tpm = -1, tref = -1, wfd = -1, mfd = -1;
	unsigned int cur = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!vec || res == MAP_FAILED)
		fail("out of memory");
	pm_fd = open("/proc/self/pagemap", O_RDONLY);	/* this worker's, not main's */
	if (have_scan && pm_fd < 0)
		fail("open /proc/self/pagemap: %s", strerror(errno));
	if (have_scan) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)toucher);
		tpm = open(path, O_RDONLY);
		if (tpm < 0 && sh->stop)
			return 0;	/* the toucher failed already, and said so */
		if (tpm < 0)
			fail("open %s: %s", path, strerror(errno));
	}
	if (have_refs) {
		snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)toucher);
		tref = open(path, O_WRONLY);
		if (tref < 0 && sh->stop)
			return 0;
		if (tref < 0)
			fail("open %s: %s", path, strerror(errno));
	}
	if (have_wp) {
		u = anon(REGION);
		wfd = uffd_wp_open();
		if (wfd < 0)
			fail("userfaultfd with WP_ASYNC: %s", strerror(errno));
		if (uffd_register(wfd, u, REGION, UFFDIO_REGISTER_MODE_WP))
			fail("UFFDIO_REGISTER_MODE_WP: %s", strerror(errno));
		/* write-protect everything: no output vector, the "exclusive WP" fast path */
		if (scan(pm_fd, u, REGION, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			 PAGE_IS_WRITTEN, 0, PAGE_IS_WRITTEN, NULL, 0, NULL) < 0)
			fail("PAGEMAP_SCAN write-protect, no vector: %s", strerror(errno));
		my->scans++;
	}
	if (have_move) {
		/* MADV_DONTFORK: a fork would make the pages shared, and those do not move */
		ma = anon(MOVE_LEN);
		mb = anon(MOVE_LEN);
		if (madvise(ma, MOVE_LEN, MADV_DONTFORK) || madvise(mb, MOVE_LEN, MADV_DONTFORK))
			fail("MADV_DONTFORK: %s", strerror(errno));
		fill(ma, MOVE_LEN, cur);
		/* SIGBUS: touching a moved-away page must not wait for a handler */
		mfd = uffd_open(UFFD_FEATURE_MOVE | UFFD_FEATURE_SIGBUS);
		if (mfd < 0)
			fail("userfaultfd with MOVE: %s", strerror(errno));
		if (uffd_register(mfd, ma, MOVE_LEN, UFFDIO_REGISTER_MODE_MISSING) ||
		    uffd_register(mfd, mb, MOVE_LEN, UFFDIO_REGISTER_MODE_MISSING))
			fail("UFFDIO_REGISTER_MODE_MISSING: %s", strerror(errno));
	}

	for (it = 0; !sh->stop && elapsed() < seconds; it++) {
		unsigned int seed = (me + 1) * 0x01000193u + (unsigned int)it * 16;

		do_fork(r, seed);
		do_mprotect(r, seed + 2);
		do_mremap(r, res, seed + 4);
		do_scratch(seed + 6);
		if (have_scan)
			do_scan(r, tpm, vec);
		if (have_wp)
			do_wp(u, vec, seed + 8);
		if (have_move)
			do_move(mfd, ma, mb, &cur, seed + 10);
		if (have_refs)
			do_clear_refs(tref);
		my->iterations++;
	}
	return 0;
}

/* the toucher: keeps writing its memory and checks it was not lost */
static int touch_loop(void)
{
	size_t n = TOUCH_LEN / ps;
	unsigned int *want = calloc(n, sizeof(*want));
	long rounds = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!want)
		return 1;
	while (!sh->toucher_stop) {
		for (size_t i = 0; i < n; i++) {
			unsigned int *w = (unsigned int *)(tmem + i * ps);

			if (*w != want[i]) {
				printf("lazy-mmu-stress: FAIL: toucher: page %zu holds %08x, want %08x\n",
				       i, *w, want[i]);
				sh->stop = 1;
				return 1;
			}
			*w = ++want[i];
		}
		rounds++;
	}
	printf("lazy-mmu-stress: toucher: %ld rounds over %lu kB, data intact\n", rounds,
	       TOUCH_LEN >> 10);
	return 0;
}

/* ---------------------------------------------------------------- probes, main */

static void probe_scan(void)
{
	struct page_region v[4];
	char *p;
	int n;

	if (skipped("scan"))
		return;
	pm_fd = open("/proc/self/pagemap", O_RDONLY);
	if (pm_fd < 0) {
		if (!missing(errno))
			fail("open /proc/self/pagemap: %s", strerror(errno));
		printf("lazy-mmu-stress: note: no /proc/self/pagemap (%s): PAGEMAP_SCAN skipped\n",
		       strerror(errno));
		return;
	}
	p = anon(4 * ps);
	fill(p, 4 * ps, 1);
	n = scan(pm_fd, p, 4 * ps, 0, 0, PAGE_IS_PRESENT, PAGE_IS_PRESENT, v, 4, NULL);
	if (n < 0) {
		if (!missing(errno))
			fail("PAGEMAP_SCAN: %s", strerror(errno));
		printf("lazy-mmu-stress: note: PAGEMAP_SCAN unavailable (%s; Linux >= 6.7): "
		       "pagemap scan paths skipped\n", strerror(errno));
	} else if (n != 1 || v[0].start != (uintptr_t)p || v[0].end != (uintptr_t)p + 4 * ps) {
		fail("PAGEMAP_SCAN of 4 present pages returned %d regions", n);
	} else {
		have_scan = 1;
	}
	munmap(p, 4 * ps);
}

static void probe_wp(void)
{
	struct page_region v[4];
	const char *step = "userfaultfd()";
	char *p;
	int fd, n = -1;

	if (!have_scan || skipped("wp"))
		return;
	p = anon(4 * ps);
	fd = uffd_wp_open();
	if (fd < 0) {
		step = fd == -1 ? "userfaultfd()" : "UFFDIO_API with UFFD_FEATURE_WP_ASYNC";
	} else if (uffd_register(fd, p, 4 * ps, UFFDIO_REGISTER_MODE_WP)) {
		step = "UFFDIO_REGISTER_MODE_WP";
	} else {
		step = "PAGEMAP_SCAN with PM_SCAN_WP_MATCHING";
		fill(p, 4 * ps, 1);
		n = scan(pm_fd, p, 4 * ps, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			 PAGE_IS_WRITTEN, 0, PAGE_IS_WRITTEN, v, 4, NULL);
	}
	if (n < 0) {
		if (!missing(errno))
			fail("%s: %s", step, strerror(errno));
		printf("lazy-mmu-stress: note: userfaultfd async write-protect unavailable (%s: %s): "
		       "PAGEMAP_SCAN write-protect path skipped\n", step, strerror(errno));
	} else if (n != 1 || v[0].end - v[0].start != 4 * ps) {
		fail("PAGEMAP_SCAN write-protect of 4 written pages returned %d regions", n);
	} else if ((n = scan(pm_fd, p, 4 * ps, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			     PAGE_IS_WRITTEN, 0, PAGE_IS_WRITTEN, v, 4, NULL))) {
		fail("second PAGEMAP_SCAN write-protect returned %d (want 0): %s", n,
		     n < 0 ? strerror(errno) : "pages not write-protected");
	} else {
		have_wp = 1;
	}
	if (fd >= 0)
		close(fd);
	munmap(p, 4 * ps);
}

static void probe_move(void)
{
	const char *step = "userfaultfd()";
	struct uffdio_move mv = { 0 };
	char *a, *b;
	int fd, ok = 0;

	if (skipped("move"))
		return;
	a = anon(ps);
	b = anon(ps);
	fill(a, ps, 3);
	fd = uffd_open(UFFD_FEATURE_MOVE | UFFD_FEATURE_SIGBUS);
	if (fd < 0) {
		step = fd == -1 ? "userfaultfd()" : "UFFDIO_API with UFFD_FEATURE_MOVE";
	} else if (uffd_register(fd, b, ps, UFFDIO_REGISTER_MODE_MISSING)) {
		step = "UFFDIO_REGISTER_MODE_MISSING";
	} else {
		step = "UFFDIO_MOVE";
		mv.dst = (uintptr_t)b;
		mv.src = (uintptr_t)a;
		mv.len = ps;
		ok = !ioctl(fd, UFFDIO_MOVE, &mv);
	}
	if (!ok) {
		if (!missing(errno))
			fail("%s: %s", step, strerror(errno));
		printf("lazy-mmu-stress: note: UFFDIO_MOVE unavailable (%s: %s): uffd move path "
		       "skipped\n", step, strerror(errno));
	} else if (mv.move != (long long)ps || bad_page(b, ps, 3) >= 0) {
		fail("UFFDIO_MOVE of one page moved %lld bytes", (long long)mv.move);
	} else {
		have_move = 1;
	}
	if (fd >= 0)
		close(fd);
	munmap(a, ps);
	munmap(b, ps);
}

static int probe_madvise(int advice, const char *name)
{
	char *p;
	int ok;

	p = anon(ps);
	ok = !madvise(p, ps, advice);
	if (!ok && !missing(errno))
		fail("madvise(%s): %s", name, strerror(errno));
	if (!ok)
		printf("lazy-mmu-stress: note: madvise(%s): %s: skipped\n", name, strerror(errno));
	munmap(p, ps);
	return ok;
}

/* kB of field in the smaps entry of the VMA that starts at addr */
static long smaps_kb(const char *addr, const char *field)
{
	char line[512], want[32];
	int in = 0;
	long kb = -1;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)(uintptr_t)addr);
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

/* clear_refs works at all, and visibly: a touched region's Referenced drops */
static void probe_refs(void)
{
	char *g, *p;
	long before, after;
	int fd;

	if (skipped("refs"))
		return;
	fd = open("/proc/self/clear_refs", O_WRONLY);
	if (fd < 0) {
		if (!missing(errno))
			fail("open /proc/self/clear_refs: %s", strerror(errno));
		printf("lazy-mmu-stress: note: no /proc/self/clear_refs (%s): clear_refs skipped\n",
		       strerror(errno));
		return;
	}
	/* PROT_NONE guards keep the region a VMA of its own */
	g = mmap(NULL, REGION + 2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	p = g + ps;
	if (mprotect(p, REGION, PROT_READ | PROT_WRITE))
		fail("mprotect: %s", strerror(errno));
	madvise(p, REGION, MADV_NOHUGEPAGE);
	fill(p, REGION, 5);
	before = smaps_kb(p, "Referenced");
	if (refs_write(fd, "1"))
		fail("write 1 to /proc/self/clear_refs: %s", strerror(errno));
	after = smaps_kb(p, "Referenced");
	printf("lazy-mmu-stress: clear_refs: Referenced of a written %lu kB region: "
	       "%ld kB -> %ld kB\n", REGION >> 10, before, after);
	if (after >= before && before > 0)
		printf("lazy-mmu-stress: note: clear_refs did not lower Referenced\n");
	verify(p, REGION, 5, "after clear_refs");
	have_refs = 1;
	close(fd);
	munmap(g, REGION + 2 * ps);
}

/* no fork or no mremap (nommu): nothing here applies */
static int probe_basics(void)
{
	char *a = anon(2 * ps), *b;
	pid_t pid;
	int st;

	b = mmap(NULL, 2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	fill(a, 2 * ps, 7);
	if (mremap(a, 2 * ps, 2 * ps, MREMAP_MAYMOVE | MREMAP_FIXED, b) == MAP_FAILED) {
		if (errno == ENOSYS) {
			printf("lazy-mmu-stress: mremap is ENOSYS: does not apply\n");
			return SKIP;
		}
		fail("mremap: %s", strerror(errno));
	}
	verify(b, 2 * ps, 7, "after the first mremap");
	pid = fork();
	if (pid < 0 && errno == ENOSYS) {
		printf("lazy-mmu-stress: fork is ENOSYS: does not apply\n");
		return SKIP;
	}
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(0);
	waitpid(pid, &st, 0);
	munmap(b, 2 * ps);
	return 0;
}

static const char *count(long n, int have)
{
	static char buf[16][24];
	static int i;

	i = (i + 1) % 16;
	if (have)
		snprintf(buf[i], sizeof(buf[i]), "%ld", n);
	else
		snprintf(buf[i], sizeof(buf[i]), "skipped");
	return buf[i];
}

static int never(long n, int have, const char *what)
{
	if (!have || n)
		return 0;
	printf("lazy-mmu-stress: FAIL: the %s path never ran\n", what);
	return 1;
}

int main(int argc, char **argv)
{
	struct counts sum = { 0 };
	int failed = 0, left, st, next = 5, toucher_done = 0;
	pid_t pid;

	seconds = argc > 1 ? atoi(argv[1]) : 20;
	procs = argc > 2 ? atoi(argv[2]) : 2;
	if (seconds < 1)
		seconds = 1;
	if (procs < 1 || procs > MAX_PROCS)
		procs = procs < 1 ? 1 : MAX_PROCS;
	setvbuf(stdout, NULL, _IONBF, 0);
	ps = sysconf(_SC_PAGESIZE);
	npages = REGION / ps;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		printf("lazy-mmu-stress: mmap shared: %s\n", strerror(errno));
		return 1;
	}
	me = -1;			/* "worker -1" in failure messages: the main process */
	if (probe_basics())
		return SKIP;
	probe_scan();
	probe_wp();
	probe_move();
	have_dontneed = probe_madvise(MADV_DONTNEED, "MADV_DONTNEED");
	if (!skipped("madvise")) {
		have_cold = probe_madvise(MADV_COLD, "MADV_COLD");
		have_pageout = probe_madvise(MADV_PAGEOUT, "MADV_PAGEOUT");
		have_free = probe_madvise(MADV_FREE, "MADV_FREE");
	}
	probe_refs();
	printf("lazy-mmu-stress: %d s, %d workers, page size %zu; PAGEMAP_SCAN %s, "
	       "write-protect scan %s, UFFDIO_MOVE %s, clear_refs %s\n", seconds, procs, ps,
	       have_scan ? "yes" : "no", have_wp ? "yes" : "no", have_move ? "yes" : "no",
	       have_refs ? "yes" : "no");

	/* mapped before any fork so every worker knows where the toucher's memory is */
	tmem = mmap(NULL, TOUCH_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tmem == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	madvise(tmem, TOUCH_LEN, MADV_NOHUGEPAGE);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	toucher = fork();
	if (toucher < 0)
		fail("fork: %s", strerror(errno));
	if (toucher == 0)
		_exit(touch_loop());
	for (int i = 0; i < procs; i++) {
		pid = fork();
		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (pid == 0) {
			me = i;
			my = &sh->c[i];
			_exit(worker());
		}
		sh->pids[i] = pid;
	}

	/*
	 * Progress, so a slow TCG guest is not taken for a hang; everyone stops early on a
	 * failure. The toucher stops last: workers write its clear_refs and scan its pagemap.
	 */
	for (left = procs; left > 0 || !toucher_done;) {
		if (!left)
			sh->toucher_stop = 1;
		pid = waitpid(-1, &st, sh->stop || !left ? 0 : WNOHANG);
		if (pid < 0)
			fail("waitpid: %s", strerror(errno));
		if (pid == 0) {
			usleep(100000);
			if (elapsed() >= next && next < seconds) {
				long n = 0;

				for (int i = 0; i < procs; i++)
					n += sh->c[i].iterations;
				printf("lazy-mmu-stress: %d/%d s, %ld iterations\n", next, seconds, n);
				next += 5;
			}
			if (elapsed() >= seconds)
				sh->stop = 1;	/* workers finish their iteration */
			continue;
		}
		if (pid == toucher)
			toucher_done = 1;
		else
			left--;
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			char who[32];
			int w = -1;

			for (int i = 0; i < procs; i++)
				if (sh->pids[i] == pid)
					w = i;
			if (pid == toucher)
				snprintf(who, sizeof(who), "toucher");
			else
				snprintf(who, sizeof(who), "worker %d", w);
			printf("lazy-mmu-stress: FAIL: %s (pid %d) %s %d\n", who, (int)pid,
			       WIFSIGNALED(st) ? "killed by signal" : "exited",
			       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			failed = 1;
			sh->stop = 1;
		}
	}

	for (int i = 0; i < procs; i++) {
		struct counts *c = &sh->c[i];

		sum.iterations += c->iterations;
		sum.forks += c->forks;
		sum.mprotects += c->mprotects;
		sum.mremaps += c->mremaps;
		sum.munmaps += c->munmaps;
		sum.madvises += c->madvises;
		sum.scans += c->scans;
		sum.wp_scans += c->wp_scans;
		sum.wp_pages += c->wp_pages;
		sum.clear_refs += c->clear_refs;
		sum.uffd_moves += c->uffd_moves;
	}
	printf("lazy-mmu-stress: %ld iterations: forks=%ld mprotect=%ld mremap_moves=%ld "
	       "munmaps=%ld madvise=%ld pagemap_scans=%s (wp scans %s, wp pages %s) "
	       "clear_refs=%s uffd_moves=%s\n", sum.iterations, sum.forks, sum.mprotects,
	       sum.mremaps, sum.munmaps, sum.madvises, count(sum.scans, have_scan),
	       count(sum.wp_scans, have_wp), count(sum.wp_pages, have_wp),
	       count(sum.clear_refs, have_refs), count(sum.uffd_moves, have_move));
	if (!failed) {
		failed |= never(sum.forks, 1, "fork");
		failed |= never(sum.mprotects, 1, "mprotect");
		failed |= never(sum.mremaps, 1, "mremap");
		failed |= never(sum.munmaps, 1, "munmap");
		failed |= never(sum.madvises, have_dontneed, "madvise");
		failed |= never(sum.scans, have_scan, "PAGEMAP_SCAN");
		failed |= never(sum.wp_pages, have_wp, "PAGEMAP_SCAN write-protect");
		failed |= never(sum.clear_refs, have_refs, "clear_refs");
		failed |= never(sum.uffd_moves, have_move, "UFFDIO_MOVE");
	}
	printf("lazy-mmu-stress: %s\n", failed ? "FAILED" : "ok");
	return failed;
}
