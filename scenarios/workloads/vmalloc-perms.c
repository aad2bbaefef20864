/*
 * vmalloc-perms: change the permissions of kernel vmalloc and linear-map memory over and
 * over (the paths where arm64 with BBML2 splits live block/contpte kernel mappings without
 * break-before-make), and prove with counters that each path ran, or fail.
 *
 * - classic BPF socket filters: threads attach and detach a small filter
 *   (SO_ATTACH_FILTER, SO_DETACH_FILTER) on AF_UNIX sockets, in bursts with short pauses.
 *   With net.core.bpf_jit_enable=1 the JIT takes executable memory from bpf_prog_pack
 *   (set_memory_rox on each new pack, text poke per program, direct-map reset when the
 *   pack's last program is freed: the pauses let packs drain). With the JIT off, each
 *   program's vmalloc'ed struct bpf_prog is set_memory_ro'd and its linear alias reset
 *   on vfree. Half of the run each way when the sysctl exists (it is put back at exit).
 *   Before and after each half a socketpair proves the filter works: 'A' passes,
 *   'B' is dropped, and after detach 'B' passes.
 * - memfd_secret: a thread creates, faults in and frees secret memory, which takes pages
 *   out of the direct map and puts them back (set_direct_map_{invalid,default}_noflush).
 * - modules: loads and unloads the first .ko under /lib/modules/$(uname -r), if any
 *   (the guest initramfs normally has none: noted and skipped).
 *
 * usage: vmalloc-perms [seconds] [threads]
 * exit: 0 filters attached and verified, 1 failure, 77 does not apply to this kernel
 * (no sockets, no AF_UNIX or no SO_ATTACH_FILTER; the memfd_secret part still runs).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_memfd_secret
#define __NR_memfd_secret 447
#endif
#define SKIP 77
#define JIT "/proc/sys/net/core/bpf_jit_enable"
#define BURST_MS 500
#define DRAIN_MS 200

/* accept the packet only if it is non-empty and its first byte is 'A' */
static struct sock_filter insns[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
	BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 1, 0, 7),
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
	BPF_STMT(BPF_ST, 0),
	BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
	BPF_STMT(BPF_MISC | BPF_TXA, 0),
	BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xff),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 'A', 0, 1),
	BPF_STMT(BPF_RET | BPF_K, 0x40000),
	BPF_STMT(BPF_RET | BPF_K, 0),
};
static struct sock_fprog fprog = { sizeof(insns) / sizeof(insns[0]), insns };

static atomic_int stop_bpf, stop_all;
static char jit_orig[16];	/* bpf_jit_enable at start, "" if untouched */

struct worker {
	pthread_t tid;
	long attaches, errors;
	int first_errno;
	const char *what;
};

static long secret_rounds, secret_pages;
static char secret_error[160];

static void restore_jit(void)
{
	int fd;

	if (!jit_orig[0])
		return;
	fd = open(JIT, O_WRONLY);
	if (fd >= 0) {
		if (write(fd, jit_orig, strlen(jit_orig)) < 0)
			(void)0;	/* nothing better to do on the way out */
		close(fd);
	}
}

static void on_signal(int sig)
{
	restore_jit();	/* open/write/close only: async-signal-safe */
	_exit(128 + sig);
}

static int wr(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	int ok = fd >= 0 && write(fd, val, strlen(val)) == (ssize_t)strlen(val);

	if (fd >= 0)
		close(fd);
	if (!ok)
		printf("vmalloc-perms: note: %s <- %s failed: %s\n", path, val, strerror(errno));
	return ok ? 0 : -1;
}

static long rd_long(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	return n > 0 ? atol(buf) : -1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int unsupported(int err)
{
	return err == ENOSYS || err == EAFNOSUPPORT || err == EPROTONOSUPPORT ||
	       err == ENOPROTOOPT || err == EOPNOTSUPP;
}

static int expect(int fd, const char *want)
{
	char buf[64];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (!want) {
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		printf("vmalloc-perms: filter let through a packet it should drop (%zd bytes, "
		       "first byte '%c')\n", n, n > 0 ? buf[0] : '?');
		return -1;
	}
	if (n == (ssize_t)strlen(want) && !memcmp(buf, want, n))
		return 0;
	if (n < 0)
		printf("vmalloc-perms: expected \"%s\", got nothing: %s\n", want, strerror(errno));
	else
		printf("vmalloc-perms: expected \"%s\", got %zd bytes \"%.*s\"\n", want, n,
		       (int)n, buf);
	return -1;
}

/* 0 the filter works, 1 it does not, SKIP no socket filters in this kernel */
static int verify(const char *mode)
{
	static const char *const msgs[] = { "A1-accept", "B1-drop", "A2-accept" };
	int sv[2], rc = 1, dummy = 0;

	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv)) {
		printf("vmalloc-perms: socketpair(AF_UNIX, SOCK_DGRAM): %s\n", strerror(errno));
		return unsupported(errno) ? SKIP : 1;
	}
	if (setsockopt(sv[1], SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog))) {
		printf("vmalloc-perms: SO_ATTACH_FILTER: %s\n", strerror(errno));
		rc = unsupported(errno) ? SKIP : 1;
		goto out;
	}
	for (int i = 0; i < 3; i++)
		if (send(sv[0], msgs[i], strlen(msgs[i]), MSG_DONTWAIT) != (ssize_t)strlen(msgs[i])) {
			printf("vmalloc-perms: send: %s\n", strerror(errno));
			goto out;
		}
	if (expect(sv[1], "A1-accept") || expect(sv[1], "A2-accept") || expect(sv[1], NULL))
		goto out;
	if (setsockopt(sv[1], SOL_SOCKET, SO_DETACH_FILTER, &dummy, sizeof(dummy))) {
		printf("vmalloc-perms: SO_DETACH_FILTER: %s\n", strerror(errno));
		goto out;
	}
	if (send(sv[0], "B2-pass", 7, MSG_DONTWAIT) != 7 || expect(sv[1], "B2-pass"))
		goto out;
	printf("vmalloc-perms: filter verified (%s): 'A' passed, 'B' dropped, "
	       "'B' passed after detach\n", mode);
	rc = 0;
out:
	if (rc == 1)
		printf("vmalloc-perms: filter verification (%s) FAILED\n", mode);
	close(sv[0]);
	close(sv[1]);
	return rc;
}

static void *bpf_worker(void *arg)
{
	struct worker *w = arg;
	int dummy = 0;

	while (!atomic_load(&stop_bpf)) {
		int s = socket(AF_UNIX, SOCK_DGRAM, 0);

		if (s < 0) {
			w->what = "socket";
			goto err;
		}
		if (setsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog))) {
			w->what = "SO_ATTACH_FILTER";
			close(s);
			goto err;
		}
		w->attaches++;
		if (setsockopt(s, SOL_SOCKET, SO_DETACH_FILTER, &dummy, sizeof(dummy))) {
			w->what = "SO_DETACH_FILTER";
			close(s);
			goto err;
		}
		close(s);
		continue;
err:
		if (!w->errors++)
			w->first_errno = errno;
		sleep_ms(1);	/* do not spin on a persistent error */
	}
	return NULL;
}

static void *secret_worker(void *arg)
{
	long pg = sysconf(_SC_PAGESIZE);

	(void)arg;
	for (unsigned int i = 0; !atomic_load(&stop_all); i++) {
		size_t n = 1 + i % 16, len = n * pg;
		unsigned char *p;
		int fd = syscall(__NR_memfd_secret, 0);

		if (fd < 0) {
			snprintf(secret_error, sizeof(secret_error), "memfd_secret: %s",
				 strerror(errno));
			break;
		}
		if (ftruncate(fd, len)) {
			snprintf(secret_error, sizeof(secret_error), "ftruncate(secret): %s",
				 strerror(errno));
			close(fd);
			break;
		}
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			snprintf(secret_error, sizeof(secret_error), "mmap(secret, %zu): %s", len,
				 strerror(errno));
			close(fd);
			break;
		}
		for (size_t off = 0; off < len; off += 64)	/* faults remove pages from the direct map */
			p[off] = (unsigned char)(i + off / 64);
		for (size_t off = 0; off < len; off += 64)
			if (p[off] != (unsigned char)(i + off / 64)) {
				snprintf(secret_error, sizeof(secret_error),
					 "secret memory changed at offset %zu in round %u", off, i);
				munmap(p, len);
				close(fd);
				return NULL;
			}
		munmap(p, len);
		close(fd);	/* last reference: pages go back to the direct map */
		secret_rounds++;
		secret_pages += n;
	}
	return NULL;
}

static char modpath[512], modname[128];

static int find_ko(const char *dir, int depth)
{
	DIR *d = depth < 6 ? opendir(dir) : NULL;
	struct dirent *e;
	struct stat st;
	char p[512];
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (e->d_name[0] == '.' ||
		    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= (int)sizeof(p) || lstat(p, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			found = find_ko(p, depth + 1);
		} else if (S_ISREG(st.st_mode) && n > 3 && !strcmp(e->d_name + n - 3, ".ko") &&
			   n - 3 < sizeof(modname)) {
			strcpy(modpath, p);
			memcpy(modname, e->d_name, n - 3);
			modname[n - 3] = 0;
			for (char *c = modname; *c; c++)
				if (*c == '-')
					*c = '_';
			found = 1;
		}
	}
	closedir(d);
	return found;
}

/* 1 loaded and unloaded, 0 gave up (noted) */
static int module_cycle(void)
{
	int fd = open(modpath, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || syscall(__NR_finit_module, fd, "", 0)) {
		printf("vmalloc-perms: note: loading %s: %s; module part skipped\n", modpath,
		       errno == EEXIST ? "already loaded" : strerror(errno));
		if (fd >= 0)
			close(fd);
		return 0;
	}
	close(fd);
	if (syscall(__NR_delete_module, modname, O_NONBLOCK)) {
		printf("vmalloc-perms: note: unloading %s: %s; module part stopped\n", modname,
		       strerror(errno));
		return 0;
	}
	return 1;
}

/* vmalloc areas that hold JIT/executable memory, -1 if that cannot be told */
static long exec_areas(void)
{
	char line[512];
	long n = 0, named = 0;
	FILE *f = fopen("/proc/vmallocinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "+0x"))
			named++;	/* callers are symbolised (CONFIG_KALLSYMS) */
		if (strstr(line, "bpf_jit_alloc_exec") || strstr(line, "execmem_") ||
		    strstr(line, "alloc_new_pack") || strstr(line, "bpf_prog_pack"))
			n++;
	}
	fclose(f);
	return named ? n : -1;
}

static int run_burst(struct worker *w, int nthreads, int jit, long *packs)
{
	long before = jit ? exec_areas() : -1, during = -1;
	int started = 0;

	atomic_store(&stop_bpf, 0);
	for (int i = 0; i < nthreads; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		if (pthread_create(&w[i].tid, NULL, bpf_worker, &w[i])) {
			printf("vmalloc-perms: pthread_create failed\n");
			break;
		}
		started++;
	}
	sleep_ms(BURST_MS);
	if (jit)
		during = exec_areas();	/* while programs are attached */
	atomic_store(&stop_bpf, 1);
	for (int i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	if (before >= 0 && during > before)
		*packs += during - before;
	return started == nthreads ? 0 : -1;
}

static void read_jit_orig(void)
{
	int fd = open(JIT, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, jit_orig, sizeof(jit_orig) - 1) : -1;

	if (fd >= 0)
		close(fd);
	jit_orig[n > 0 ? n : 0] = 0;
	jit_orig[strcspn(jit_orig, "\n")] = 0;
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 15;
	int nthreads = argc > 2 ? atoi(argv[2]) : 4;
	int have_jit = !access(JIT, F_OK), have_secret = 0, have_module = 0;
	int rc = 0, probe, nobpf, phases, fd;
	long count[2] = { 0, 0 }, errors = 0, packs = 0, modules = 0;
	pthread_t secret_tid;
	struct worker *w;
	struct utsname u;
	char dir[300];

	setvbuf(stdout, NULL, _IONBF, 0);
	if (seconds < 2)
		seconds = 2;
	if (nthreads < 1 || nthreads > 64)
		nthreads = 4;
	w = calloc(nthreads, sizeof(*w));
	if (!w)
		return 1;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	printf("vmalloc-perms: %d s, %d threads\n", seconds, nthreads);

	/* memfd_secret: probe once, then a thread churns it for the whole run */
	fd = syscall(__NR_memfd_secret, 0);
	if (fd >= 0) {
		close(fd);
		have_secret = !pthread_create(&secret_tid, NULL, secret_worker, NULL);
		if (!have_secret) {
			printf("vmalloc-perms: pthread_create failed\n");
			rc = 1;
		}
	} else if (errno == ENOSYS) {
		printf("vmalloc-perms: note: memfd_secret not available (boot with "
		       "secretmem.enable=1? CONFIG_SECRETMEM? no set_direct_map?): skipped\n");
	} else {
		printf("vmalloc-perms: memfd_secret: %s\n", strerror(errno));
		rc = 1;
	}

	/* modules: only if the kernel has them and the initramfs carries one */
	uname(&u);
	snprintf(dir, sizeof(dir), "/lib/modules/%.200s", u.release);
	if (access("/proc/modules", F_OK))
		printf("vmalloc-perms: note: no /proc/modules (no CONFIG_MODULES): module part skipped\n");
	else if (!find_ko(dir, 0))
		printf("vmalloc-perms: note: no .ko under %s: module part skipped\n", dir);
	else
		have_module = 1;

	probe = verify("probe");
	nobpf = probe == SKIP;
	if (nobpf)
		printf("vmalloc-perms: no socket filters in this kernel (CONFIG_NET? CONFIG_UNIX?): "
		       "BPF part does not apply\n");
	else if (probe)
		rc = 1;
	if (!nobpf && !have_jit)
		printf("vmalloc-perms: note: no %s (kernel without CONFIG_BPF_JIT): "
		       "interpreter only\n", JIT);
	if (!nobpf && have_jit) {
		read_jit_orig();
		printf("vmalloc-perms: bpf_jit_enable is %s\n", jit_orig);
	}

	/* two halves, JIT then interpreter, if the JIT can be switched; else one */
	phases = !nobpf && have_jit ? 2 : 1;
	for (int ph = 0; ph < phases; ph++) {
		double end = now() + (double)seconds / phases;
		long before = 0;
		int mode = 0;	/* 1 JIT, 0 interpreter */

		if (phases == 2) {
			wr(JIT, ph ? "0" : "1");
			mode = rd_long(JIT) > 0;
			if (mode != !ph)
				printf("vmalloc-perms: note: bpf_jit_enable stays %d%s\n", mode, mode ?
				       " (CONFIG_BPF_JIT_ALWAYS_ON?): no interpreter phase" : "");
		}
		if (!nobpf) {
			printf("vmalloc-perms: phase %d: %s, %.1f s\n", ph + 1,
			       mode ? "JIT" : "interpreter", (double)seconds / phases);
			if (verify(mode ? "jit" : "interpreter"))
				rc = 1;
			before = count[mode];
		}
		while (now() < end) {
			if (nobpf) {
				sleep_ms(BURST_MS);
			} else {
				if (run_burst(w, nthreads, mode, &packs))
					rc = 1;
				for (int i = 0; i < nthreads; i++) {
					count[mode] += w[i].attaches;
					errors += w[i].errors;
					if (w[i].errors)
						printf("vmalloc-perms: %ld %s errors, first: %s\n",
						       w[i].errors, w[i].what, strerror(w[i].first_errno));
				}
			}
			if (have_module && (have_module = module_cycle()))
				modules++;
			sleep_ms(DRAIN_MS);	/* let RCU free the programs (and empty packs) */
		}
		if (!nobpf) {
			if (verify(mode ? "jit" : "interpreter"))
				rc = 1;
			if (count[mode] == before) {
				printf("vmalloc-perms: no filter attached in phase %d\n", ph + 1);
				rc = 1;
			}
		}
	}
	restore_jit();
	atomic_store(&stop_all, 1);
	if (have_secret)
		pthread_join(secret_tid, NULL);
	if (secret_error[0]) {
		printf("vmalloc-perms: %s\n", secret_error);
		rc = 1;
	} else if (have_secret && !secret_rounds) {
		printf("vmalloc-perms: memfd_secret loop made no progress\n");
		rc = 1;
	}
	if (errors)
		rc = 1;
	printf("vmalloc-perms: bpf_attach jit=%ld interp=%ld memfd_secret=%ld (%ld pages) "
	       "modules=%ld jit_exec_areas_new=%ld%s errors=%ld\n", count[1], count[0],
	       secret_rounds, secret_pages, modules, packs,
	       exec_areas() < 0 ? " (unknown: no symbols in /proc/vmallocinfo)" : "", errors);
	free(w);
	if (rc)
		return 1;
	return nobpf ? SKIP : 0;
}
