/*
 * uffd-wp-access-flag: the smallest trigger of arm64's DEBUG_VM warning "racy access flag
 * clearing" (known issue arm64-uffd-wp-racy-access-flag). One anonymous page, written
 * (present, young, dirty); userfaultfd async write-protect through PAGEMAP_SCAN's
 * PM_SCAN_WP_MATCHING (the uffd-wp bit set, the PTE read-only); MADV_COLD (the access
 * flag cleared, the PTE still valid); then a write. Its fault reaches do_wp_page(), which
 * drops the uffd-wp bit with set_pte_at() on the live PTE, still old: arm64's
 * __check_safe_pte_update() sees a valid -> valid update with the access flag clear.
 *
 * exit: 0 done (the warning, if any, is the kernel's), 77 does not apply (no userfaultfd
 * async write-protect or PAGEMAP_SCAN: kernels before 6.7).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PAGEMAP_SCAN	/* include/uapi/linux/fs.h of Linux 6.7+ */
#define PAGEMAP_SCAN		_IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WRITTEN		(1 << 1)
#define PM_SCAN_WP_MATCHING	(1 << 0)
#define PM_SCAN_CHECK_WPASYNC	(1 << 1)
struct page_region { __u64 start, end, categories; };
struct pm_scan_arg {
	__u64 size, flags, start, end, walk_end, vec, vec_len, max_pages;
	__u64 category_inverted, category_mask, category_anyof_mask, return_mask;
};
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC	(1 << 15)
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif

int main(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = ps },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct page_region out;
	struct pm_scan_arg scan = {
		.size = sizeof(scan), .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = (uintptr_t)p, .end = (uintptr_t)p + ps,
		.vec = (uintptr_t)&out, .vec_len = 1,
		.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
	};
	int pm = open("/proc/self/pagemap", O_RDONLY);

	if (p == MAP_FAILED || uffd < 0 || pm < 0 || ioctl(uffd, UFFDIO_API, &api) ||
	    ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		perror("uffd-wp-access-flag: setup");
		return 77;
	}
	memset(p, 1, ps);			/* present, young, dirty */
	if (ioctl(pm, PAGEMAP_SCAN, &scan) < 0) {	/* write-protect it (uffd-wp bit set) */
		perror("uffd-wp-access-flag: PAGEMAP_SCAN");
		return 77;
	}
	madvise(p, ps, MADV_COLD);		/* access flag cleared, PTE still valid */
	p[0] = 2;				/* write fault: do_wp_page() clears uffd-wp */
	printf("uffd-wp-access-flag: done\n");
	return 0;
}
