/*
 * wsceil.c - the ceiling for the fan-out benchmark: a minimal server in
 * one epoll loop that answers WebSocket handshakes and, for each
 * POST /orders, does one write() of {"type":"newOrder","data":BODY} per
 * client and answers 201; GET anything else answers 200 {}.  No
 * storage, no limits, no slow-client handling: what one thread writing
 * to sockets can do on this machine.  Not a server to use.
 *
 *	wsceil PORT		(127.0.0.1 only; runs until killed)
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define MAXFD	65536

static unsigned char	 isws[MAXFD];
static int		 wsfds[MAXFD];
static int		 nws;

static void
drop(int fd)
{
	int i;

	if (isws[fd])
		for (i = 0; i < nws; i++)
			if (wsfds[i] == fd)
				wsfds[i] = wsfds[--nws];
	isws[fd] = 0;
	close(fd);
}

static void
upgrade(int fd, const char *head)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char md[SHA_DIGEST_LENGTH], acc[64];
	char in[128], out[256];
	const char *k;
	int n;

	if ((k = strcasestr(head, "Sec-WebSocket-Key:")) == NULL)
		return;
	for (k += 18; *k == ' '; k++)
		;
	if (strcspn(k, "\r\n") != 24)
		return;
	memcpy(in, k, 24);
	memcpy(in + 24, guid, sizeof(guid));
	SHA1((unsigned char *)in, 24 + sizeof(guid) - 1, md);
	EVP_EncodeBlock(acc, md, sizeof(md));
	n = snprintf(out, sizeof(out), "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
	if (write(fd, out, n) == n) {
		isws[fd] = 1;
		wsfds[nws++] = fd;
	}
}

static void
broadcast(const char *body, size_t len)
{
	static unsigned char f[70000];
	size_t hl, pl = len + 27;
	int i;

	f[0] = 0x81;
	if (pl < 126) {
		f[1] = pl;
		hl = 2;
	} else {
		f[1] = 126;
		f[2] = pl >> 8;
		f[3] = pl & 0xff;
		hl = 4;
	}
	memcpy(f + hl, "{\"type\":\"newOrder\",\"data\":", 26);
	memcpy(f + hl + 26, body, len);
	memcpy(f + hl + 26 + len, "}", 1);
	for (i = 0; i < nws; i++)
		if (write(wsfds[i], f, hl + pl) < 0)
			continue;
}

int
main(int argc, char *argv[])
{
	static char buf[65536];
	struct epoll_event ev, evs[256];
	struct sockaddr_in sa;
	struct rlimit rl;
	char *body, *cl, out[512];
	ssize_t r;
	int ep, ls, fd, i, n, one = 1, len;

	if (argc != 2)
		return 2;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	ls = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(ls, 4096) == -1)
		return 1;
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.fd = ls;
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	for (;;) {
		n = epoll_wait(ep, evs, 256, -1);
		for (i = 0; i < n; i++) {
			fd = evs[i].data.fd;
			if (fd == ls) {
				if ((fd = accept(ls, NULL, NULL)) < 0 ||
				    fd >= MAXFD)
					continue;
				ev.events = EPOLLIN;
				ev.data.fd = fd;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				continue;
			}
			/* Requests come whole on loopback; frames are ignored. */
			if ((r = read(fd, buf, sizeof(buf) - 1)) <= 0) {
				drop(fd);
				continue;
			}
			if (isws[fd])
				continue;
			buf[r] = '\0';
			if (strstr(buf, "\r\n\r\n") == NULL)
				continue;
			if (strcasestr(buf, "Upgrade: websocket") != NULL) {
				upgrade(fd, buf);
				continue;
			}
			body = strstr(buf, "\r\n\r\n") + 4;
			len = 0;
			if ((cl = strcasestr(buf, "Content-Length:")) != NULL)
				len = atoi(cl + 15);
			if (strncmp(buf, "POST /orders", 12) == 0 && len > 0 &&
			    len < 60000 && body + len <= buf + r) {
				broadcast(body, len);
				snprintf(out, sizeof(out), "HTTP/1.1 201 Created\r\n"
				    "Content-Length: %d\r\n\r\n%.*s", len, len,
				    body);
			} else
				snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\n"
				    "Content-Length: 2\r\n\r\n{}");
			if (write(fd, out, strlen(out)) < 0)
				drop(fd);
		}
	}
}
