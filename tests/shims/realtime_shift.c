/* An LD_PRELOAD shim that shifts CLOCK_REALTIME alone, as NTP stepping a Pi's clock does, and leaves
 * CLOCK_MONOTONIC (and sleeping) untouched. The shift, in seconds (a decimal number, either sign), is read from
 * the file named by $REALTIME_SHIFT_FILE, at most every 20 ms, so a test steps a running process's wall clock by
 * rewriting that file. libfaketime does more, but its clock_nanosleep wrapper makes Python 3.11's time.sleep fail
 * with EINVAL even with FAKETIME_DONT_FAKE_MONOTONIC=1.
 *
 * Build: cc -shared -fPIC -O2 -o realtime_shift.so realtime_shift.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime(void) {
    static clock_gettime_fn real;
    if (!real) real = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    return real;
}

static long long shift_ns(void) {
    static long long cached;
    static long long read_at = -1;
    struct timespec mono;
    real_clock_gettime()(CLOCK_MONOTONIC, &mono);
    long long now = (long long)mono.tv_sec * 1000000000LL + mono.tv_nsec;
    if (read_at >= 0 && now - read_at < 20000000LL) return cached;
    read_at = now;
    const char *path = getenv("REALTIME_SHIFT_FILE");
    FILE *file = path ? fopen(path, "r") : NULL;
    double seconds = 0;
    if (file) {
        if (fscanf(file, "%lf", &seconds) != 1) seconds = 0;
        fclose(file);
    }
    cached = (long long)(seconds * 1e9);
    return cached;
}

static void shift(struct timespec *ts) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + shift_ns();
    long long sec = ns / 1000000000LL, rest = ns % 1000000000LL;
    if (rest < 0) {
        rest += 1000000000LL;
        sec -= 1;
    }
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)rest;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int result = real_clock_gettime()(id, ts);
    if (result == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) shift(ts);
    return result;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    (void)tz;
    int result = clock_gettime(CLOCK_REALTIME, &ts);
    if (result == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return result;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
