/*
 * wsload.c - WebSocket fan-out load client for the benchmark (not a
 * test): holds CLIENTS connections in one epoll loop while a second
 * thread posts ORDERS orders one at a time, each carrying its
 * CLOCK_MONOTONIC time in product_id, and reads GET /analytics after
 * each.  Prints one line "RESULT {json}": frames/s, delivery latency of
 * newOrder (post to frame read), POST and GET latency during fan-out,
 * and, when given the server's pid, its RSS per client and its CPU time
 * (user and system) per frame delivered.
 *
 *	wsload [-r RATE] PORT CLIENTS ORDERS [SERVER_PID]
 *
 * Without -r the orders go back to back: each as soon as the previous
 * POST and GET are answered, which measures throughput.  With -r, order
 * i is due at start + i / RATE seconds: the poster sleeps until then
 * (or sends at once when late), and both the timestamp in product_id
 * and the POST latency count from the due time, not from when it was
 * sent, so a server that stalls is charged for the orders it held
 * back (no coordinated omission).  The GET that follows each POST is
 * timed from when it was sent.
 *
 * Bounded: 120 s in all.  Runs against salesd or tests/bench/wsceil.c.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LIMIT_S		120
#define CARRY		65536

struct conn {
	int		 fd;
	int		 up;		/* 101 seen */
	size_t		 len;
	unsigned char	*buf;		/* bytes not yet a whole frame */
};

static int		 port;
static int		 norders;
static double		 rate;		/* orders/s; 0: back to back */
static volatile int	 posted;
static double		*post_ms, *get_ms;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
dial(void)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* One request on a keep-alive socket; the whole answer is read. */
static int
request(int fd, const char *req)
{
	char buf[65536], *p;
	size_t len = 0;
	ssize_t n;
	long clen;

	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		return -1;
	for (;;) {
		if ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0)
			return -1;
		len += n;
		buf[len] = '\0';
		if ((p = strstr(buf, "\r\n\r\n")) == NULL)
			continue;
		clen = 0;
		if (strcasestr(buf, "content-length:") != NULL)
			clen = strtol(strcasestr(buf, "content-length:") + 15,
			    NULL, 10);
		if ((size_t)(p + 4 - buf) + clen <= len)
			return 0;
	}
}

static void *
poster(void *arg)
{
	char req[512], body[128];
	struct timespec ts;
	double t, start, due;
	int fd, i, n;

	(void)arg;
	/*
	 * The poster runs first when its answer comes: on a box whose
	 * cores the fan-out fills (the server's loop and our reader), a
	 * woken thread of ordinary priority can wait milliseconds for a
	 * CPU, which would be counted as the server's latency.  Needs
	 * root; without it the figures include that wait.
	 */
	if (pthread_setschedparam(pthread_self(), SCHED_FIFO,
	    &(struct sched_param){ .sched_priority = 1 }) != 0)
		fprintf(stderr, "wsload: poster not SCHED_FIFO: HTTP "
		    "latencies include waits for a CPU\n");
	if ((fd = dial()) == -1)
		return NULL;
	start = now_ms();
	for (i = 0; i < norders; i++) {
		t = now_ms();
		if (rate > 0) {
			due = start + i * 1e3 / rate;
			if (due > t) {
				ts.tv_sec = (time_t)(due / 1e3);
				ts.tv_nsec = (long)((due - ts.tv_sec * 1e3) *
				    1e6);
				while (clock_nanosleep(CLOCK_MONOTONIC,
				    TIMER_ABSTIME, &ts, NULL) == EINTR)
					;
			}
			t = due;
		}
		n = snprintf(body, sizeof(body), "{\"product_id\":\"t%.3f\","
		    "\"quantity\":1,\"price\":1.5}", t);
		snprintf(req, sizeof(req), "POST /orders HTTP/1.1\r\n"
		    "Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
		    "Content-Length: %d\r\n\r\n%s", n, body);
		if (request(fd, req) == -1)
			break;
		post_ms[i] = now_ms() - t;
		t = now_ms();
		if (request(fd, "GET /analytics HTTP/1.1\r\n"
		    "Host: 127.0.0.1\r\n\r\n") == -1)
			break;
		get_ms[i] = now_ms() - t;
		posted = i + 1;
	}
	close(fd);
	return NULL;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double *v, size_t n, double p)
{
	if (n == 0)
		return -1;
	qsort(v, n, sizeof(*v), cmp);
	return v[(size_t)((n - 1) * p)];
}

static long
rss_kib(int pid)
{
	char path[64], line[256];
	FILE *f;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

/*
 * The server's CPU time so far in clock ticks, user and system
 * (proc(5), fields 14 and 15); -1 if unknown.
 */
static int
cpu_ticks(int pid, long *user, long *sys)
{
	char path[64], line[1024], *p;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	ok = fgets(line, sizeof(line), f) != NULL &&
	    (p = strrchr(line, ')')) != NULL &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%ld %ld", user, sys) == 2;
	fclose(f);
	return ok ? 0 : -1;
}

/* Whole frames in c's bytes: counts them, samples newOrder latency. */
static void
frames(struct conn *c, size_t *nframes, double *lat, size_t *nlat,
    size_t maxlat, double *first, double *last)
{
	unsigned char *p = c->buf, *pl, *end = c->buf + c->len;
	uint64_t n;
	size_t hl, i;
	char *t;

	while (end - p >= 2) {
		n = p[1] & 0x7f;
		hl = 2;
		if (n == 126) {
			if (end - p < 4)
				break;
			n = (uint64_t)p[2] << 8 | p[3];
			hl = 4;
		} else if (n == 127) {
			if (end - p < 10)
				break;
			for (n = 0, i = 0; i < 8; i++)
				n = n << 8 | p[2 + i];
			hl = 10;
		}
		if ((uint64_t)(end - p) < hl + n)
			break;
		pl = p + hl;
		if ((p[0] & 0x0f) == 1) {
			(*nframes)++;
			*last = now_ms();
			if (*first == 0)
				*first = *last;
			if (n > 20 && memcmp(pl, "{\"type\":\"newOrder\"", 18)
			    == 0 && (t = memmem(pl, n, "\"product_id\":\"t",
			    15)) != NULL && *nlat < maxlat)
				lat[(*nlat)++] = *last - strtod(t + 15, NULL);
		}
		p += hl + n;
	}
	memmove(c->buf, p, end - p);
	c->len = end - p;
}

int
main(int argc, char *argv[])
{
	static unsigned char rbuf[65536];
	struct epoll_event ev, evs[256];
	struct rlimit rl;
	struct conn *cs, *c;
	pthread_t th;
	double *lat, first = 0, last = 0, t0;
	size_t nframes = 0, nlat = 0, maxlat, want;
	long rss0 = -1, rss1 = -1, u0 = 0, s0 = 0, u1 = 0, s1 = 0;
	double tick, cpu_user = -1, cpu_sys = -1;
	int cpu = -1;
	char req[256], *h;
	int ep, i, k, n, nconn, nup = 0, pid = 0;
	ssize_t r;

	while ((k = getopt(argc, argv, "r:")) != -1) {
		if (k != 'r' || (rate = atof(optarg)) <= 0)
			goto usage;
	}
	argc -= optind;
	argv += optind;
	if (argc < 3) {
usage:
		fprintf(stderr, "usage: wsload [-r RATE] PORT CLIENTS ORDERS "
		    "[SERVER_PID]\n");
		return 2;
	}
	port = atoi(argv[0]);
	nconn = atoi(argv[1]);
	norders = atoi(argv[2]);
	if (argc > 3)
		pid = atoi(argv[3]);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	want = (size_t)nconn * norders;
	maxlat = want;
	if ((cs = calloc(nconn, sizeof(*cs))) == NULL ||
	    (lat = calloc(maxlat + 1, sizeof(*lat))) == NULL ||
	    (post_ms = calloc(norders + 1, sizeof(double))) == NULL ||
	    (get_ms = calloc(norders + 1, sizeof(double))) == NULL ||
	    (ep = epoll_create1(0)) == -1)
		return 1;
	if (pid)
		rss0 = rss_kib(pid);
	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n");
	t0 = now_ms();
	for (i = 0; i < nconn; i++) {
		c = &cs[i];
		if ((c->fd = dial()) == -1 || (c->buf = malloc(CARRY)) ==
		    NULL || write(c->fd, req, strlen(req)) !=
		    (ssize_t)strlen(req)) {
			fprintf(stderr, "wsload: client %d: %s\n", i,
			    strerror(errno));
			return 1;
		}
		fcntl(c->fd, F_SETFL, O_NONBLOCK);
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	}
	for (;;) {
		if (nup == nconn && posted == norders &&
		    (nlat >= want || now_ms() - last > 5000))
			break;
		if (now_ms() - t0 > LIMIT_S * 1000.0)
			break;
		if ((n = epoll_wait(ep, evs, 256, 100)) == -1 && errno != EINTR)
			return 1;
		for (k = 0; k < n; k++) {
			c = evs[k].data.ptr;
			while ((r = read(c->fd, rbuf, sizeof(rbuf))) > 0) {
				if (c->len + r > CARRY)
					r = CARRY - c->len;
				memcpy(c->buf + c->len, rbuf, r);
				c->len += r;
				if (!c->up) {
					c->buf[c->len < CARRY ? c->len :
					    CARRY - 1] = '\0';
					if ((h = memmem(c->buf, c->len,
					    "\r\n\r\n", 4)) == NULL)
						continue;
					c->up = 1;
					h += 4;
					c->len -= (unsigned char *)h - c->buf;
					memmove(c->buf, h, c->len);
					if (++nup == nconn) {
						if (pid) {
							rss1 = rss_kib(pid);
							cpu = cpu_ticks(pid,
							    &u0, &s0);
						}
						pthread_create(&th, NULL,
						    poster, NULL);
					}
				}
				frames(c, &nframes, lat, &nlat, maxlat,
				    &first, &last);
			}
			if (r == 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
			}
		}
	}
	if (nup == nconn)
		pthread_join(th, NULL);
	/*
	 * What the server spent per frame delivered, from the first order
	 * to the last frame: a figure that, unlike latency, a busy machine
	 * hardly moves.
	 */
	if (cpu == 0 && cpu_ticks(pid, &u1, &s1) == 0 && nframes > 0) {
		tick = 1e6 / sysconf(_SC_CLK_TCK);
		cpu_user = (u1 - u0) * tick / nframes;
		cpu_sys = (s1 - s0) * tick / nframes;
	}
	printf("RESULT {\"clients\":%d,\"connected\":%d,\"orders\":%d,"
	    "\"rate\":%g,"
	    "\"posted\":%d,\"frames\":%zu,\"newOrder\":%zu,"
	    "\"expected\":%zu,\"frames_per_s\":%.0f,"
	    "\"delivery_p50_ms\":%.1f,\"delivery_p99_ms\":%.1f,"
	    "\"post_p50_ms\":%.2f,\"post_p99_ms\":%.2f,"
	    "\"get_p50_ms\":%.2f,\"get_p99_ms\":%.2f,"
	    "\"rss_per_client\":%.0f,"
	    "\"cpu_user_us_per_frame\":%.2f,"
	    "\"cpu_sys_us_per_frame\":%.2f}\n", nconn, nup, norders, rate, posted,
	    nframes, nlat, want, last > first ? nframes / ((last - first) /
	    1e3) : 0, pct(lat, nlat, .5), pct(lat, nlat, .99),
	    pct(post_ms, posted, .5), pct(post_ms, posted, .99),
	    pct(get_ms, posted, .5), pct(get_ms, posted, .99),
	    rss0 >= 0 && rss1 >= 0 && nconn ? (rss1 - rss0) * 1024.0 /
	    nconn : -1, cpu_user, cpu_sys);
	return 0;
}
