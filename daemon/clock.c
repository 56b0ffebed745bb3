/*
 * clock: monotonic and wall-clock milliseconds, timevals, and the ISO 8601
 * parser shared by the config loader and the event decoder.
 */
#include "clock.h"

#include <stdio.h>
#include <time.h>

int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timeval clock_timeval(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Reads exactly `n` digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

bool clock_parse_iso8601(const char *s, int64_t *ms)
{
    int year, month, day, hour, min, sec, frac_ms = 0;
    const char *p = s;

    if (s == NULL)
        return false;
    if (!digits(&p, 4, &year) || *p++ != '-' || !digits(&p, 2, &month) || *p++ != '-' ||
        !digits(&p, 2, &day) || (*p != 'T' && *p != 't' && *p != ' '))
        return false;
    p++;
    if (!digits(&p, 2, &hour) || *p++ != ':' || !digits(&p, 2, &min) || *p++ != ':' ||
        !digits(&p, 2, &sec))
        return false;
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || min > 59 || sec > 59)
        return false;
    if (*p == '.') {
        int n = 0, scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++, n++) {
            frac_ms += (*p - '0') * scale;
            scale /= 10;
        }
        if (n == 0 || n > 9)
            return false;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (!digits(&p, 2, &oh))
            return false;
        if (*p == ':')
            p++;
        if (*p != '\0' && !digits(&p, 2, &om))
            return false;
        /* PostgreSQL refuses a zone offset beyond 15:59. */
        if (oh > 15 || om > 59)
            return false;
        offset_min = sign * (oh * 60 + om);
    } else {
        return false; /* a time without a zone would depend on the server's TimeZone */
    }
    if (*p != '\0')
        return false;

    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = month - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    int64_t secs = (int64_t)timegm(&tm) - (int64_t)offset_min * 60;
    *ms = secs * 1000 + frac_ms;
    return true;
}

const char *clock_format_iso8601(int64_t ms, char *out)
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    unsigned frac = (unsigned)(ms - secs * 1000) % 1000u;
    time_t t = (time_t)secs;
    struct tm tm;
    size_t n = gmtime_r(&t, &tm) != NULL
                   ? strftime(out, CLOCK_ISO8601_LEN - 6, "%Y-%m-%dT%H:%M:%S", &tm)
                   : 0;
    if (n == 0)
        n = (size_t)snprintf(out, CLOCK_ISO8601_LEN, "1970-01-01T00:00:00");
    snprintf(out + n, CLOCK_ISO8601_LEN - n, ".%03uZ", frac);
    return out;
}
