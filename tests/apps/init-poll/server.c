/* An HTTP server on :8080 with three idle threads that block forever: one in poll on a pipe
 * nobody writes, one in epoll_wait on an empty epoll set, one in sigtimedwait for a signal
 * nobody sends. Any of those calls failing (a seccomp profile denying it) ends the process. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what, int code) {
    fprintf(stderr, "idle-server: %s: %s\n", what, strerror(errno));
    exit(code);
}

static void *poller(void *arg) {
    int fds[2];
    (void)arg;
    if (pipe(fds) != 0) die("pipe", 70);
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    for (;;)
        if (poll(&p, 1, -1) < 0 && errno != EINTR) die("poll", 70);
}

static void *epoller(void *arg) {
    (void)arg;
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1", 71);
    struct epoll_event ev;
    for (;;)
        if (epoll_wait(ep, &ev, 1, -1) < 0 && errno != EINTR) die("epoll_wait", 71);
}

static void *signaller(void *arg) {
    sigset_t *set = arg;
    siginfo_t info;
    for (;;)
        if (sigtimedwait(set, &info, NULL) < 0 && errno != EINTR && errno != EAGAIN)
            die("sigtimedwait", 72);
}

int main(void) {
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t t;
    pthread_create(&t, NULL, poller, NULL);
    pthread_create(&t, NULL, epoller, NULL);
    pthread_create(&t, NULL, signaller, &set);

    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0) die("listen", 1);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        char buf[1024];
        (void)read(c, buf, sizeof buf);
        const char *answer =
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nidle!\n";
        (void)write(c, answer, strlen(answer));
        close(c);
    }
}
