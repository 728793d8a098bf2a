/*
 * test_d_shared.c - daemon/shared.c: the max_connections places of the serving
 * processes. One process: a plain compare, nothing shared. Several: places
 * taken and given back per process, the last one refused, a dead process's
 * places cleared, and two forked processes taking and giving back places as
 * fast as they can against a small maximum, which the total must never pass
 * (an unlocked check followed by a store of the process's own count does) and
 * which ends at 0.
 *
 * The tests run in order: the first one needs the process before
 * shared_init(), which cannot be undone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "shared.h"

/* How long each racing process runs at least (the two overlap on two cores
 * only part of the time on a loaded machine), the refusals (proof that they
 * overlapped near the limit) each must have seen before it stops, unless
 * RACE_SECONDS pass first; and the places they race for. */
#define RACE_MIN_MS 1000
#define RACE_REFUSALS 10000
#define RACE_SECONDS 10
#define RACE_MAX 3

/* What the racing processes report, in a mapping of its own. */
struct race_report {
	long admitted;
	long refused;
	long over;          /* times a process saw more than RACE_MAX taken */
	long most;          /* the most it saw taken */
	int ready;          /* start barrier (in the first report) */
};

static void test_one_process(void **state)
{
	size_t open = 99;

	(void)state;
	assert_int_equal(shared_workers(), 1);
	/* no mapping: this process's own count decides, nothing is kept */
	assert_int_equal(shared_conns_admit(0, 2, &open), 1);
	assert_int_equal(shared_conns_admit(1, 2, &open), 1);
	assert_int_equal(open, 99);
	assert_int_equal(shared_conns_admit(2, 2, &open), 0);
	assert_int_equal(open, 2);
	assert_int_equal(shared_conns_admit(7, 2, &open), 0);
	assert_int_equal(open, 7);
	shared_conns_release();
	shared_conns_clear(0);
	assert_int_equal(shared_conns_total(5), 5);
	/* out of range, or one process: still nothing mapped */
	assert_int_equal(shared_init(0), SC_ERR_ARG);
	assert_int_equal(shared_init(SHARED_WORKERS_MAX + 1), SC_ERR_ARG);
	assert_int_equal(shared_init(1), SC_OK);
	assert_int_equal(shared_workers(), 1);
	assert_int_equal(shared_conns_total(3), 3);
}

static void test_places(void **state)
{
	size_t open = 0;

	(void)state;
	assert_int_equal(shared_init(2), SC_OK);
	assert_int_equal(shared_workers(), 2);
	/* a second call keeps the mapping */
	assert_int_equal(shared_init(2), SC_OK);
	shared_set_index(0);
	assert_int_equal(shared_index(), 0);
	/* with a mapping the shared counts decide, not the argument */
	assert_int_equal(shared_conns_admit(1000, 3, &open), 1);
	assert_int_equal(shared_conns_admit(1000, 3, &open), 1);
	shared_set_index(1);
	assert_int_equal(shared_index(), 1);
	assert_int_equal(shared_conns_admit(0, 3, &open), 1);
	assert_int_equal(shared_conns_total(0), 3);
	/* the last place is taken: process 1 is refused for process 0's too */
	assert_int_equal(shared_conns_admit(0, 3, &open), 0);
	assert_int_equal(open, 3);
	assert_int_equal(shared_conns_total(0), 3);
	/* process 0 gives one back: process 1 may take it */
	shared_set_index(0);
	shared_conns_release();
	assert_int_equal(shared_conns_total(0), 2);
	shared_set_index(1);
	assert_int_equal(shared_conns_admit(0, 3, &open), 1);
	assert_int_equal(shared_conns_total(0), 3);
	/* a lower maximum (a reload): refused, counted as they are */
	assert_int_equal(shared_conns_admit(0, 1, &open), 0);
	assert_int_equal(open, 3);
	/* process 1 ends: its 2 are gone; a clear out of range changes nothing */
	shared_conns_clear(1);
	shared_conns_clear(2);
	shared_conns_clear(SHARED_WORKERS_MAX);
	assert_int_equal(shared_conns_total(0), 1);
	/* giving back more than was taken never goes below 0 */
	shared_conns_release();
	shared_conns_release();
	assert_int_equal(shared_conns_total(0), 1);
	shared_set_index(0);
	shared_conns_release();
	shared_conns_release();
	assert_int_equal(shared_conns_total(0), 0);
	/* an index beyond the processes is taken as 0 */
	shared_set_index(5);
	assert_int_equal(shared_index(), 0);
}

/* A serving process that dies holding places: the master's clear frees them. */
static void test_dead_process(void **state)
{
	size_t open = 0;
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(shared_conns_total(0), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		size_t o;

		shared_set_index(1);
		_exit(shared_conns_admit(0, 2, &o) && shared_conns_admit(0, 2, &o) ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	shared_set_index(0);
	assert_int_equal(shared_conns_total(0), 2);
	assert_int_equal(shared_conns_admit(0, 2, &open), 0);
	assert_int_equal(open, 2);
	shared_conns_clear(1);
	assert_int_equal(shared_conns_total(0), 0);
	assert_int_equal(shared_conns_admit(0, 2, &open), 1);
	shared_conns_release();
	assert_int_equal(shared_conns_total(0), 0);
}

static long long race_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Both racing processes have been refused often enough: they overlapped. */
static int race_contended(const struct race_report *rep)
{
	return __atomic_load_n(&rep[0].refused, __ATOMIC_RELAXED) >= RACE_REFUSALS &&
	       __atomic_load_n(&rep[1].refused, __ATOMIC_RELAXED) >= RACE_REFUSALS;
}

/* One racing process: take places up to a target that varies, checking after
 * each that no more than RACE_MAX are taken, then give them all back. */
static void race(unsigned index, struct race_report *rep, int *ready)
{
	unsigned long long x = 0x9e3779b97f4a7c15ULL * (index + 1);
	long admitted = 0, refused = 0, over = 0, most = 0;
	long long start;
	int held = 0;

	shared_set_index(index);
	/* both start together, so that they overlap even on a loaded machine
	 * (bounded: the other one may never have been forked) */
	start = race_ms();
	__atomic_add_fetch(ready, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(ready, __ATOMIC_SEQ_CST) < 2 && race_ms() - start < 10000)
		;
	start = race_ms();
	/* on a loaded machine one may run alone for a while, or wait while
	 * the other holds every place: go on until each has taken places and
	 * been refused some, i.e. they overlapped near the limit */
	for (long round = 0;; round++) {
		size_t open, now;
		int want;

		if (round % 1024 == 0) {
			long long ms = race_ms() - start;

			if (ms >= RACE_SECONDS * 1000LL || (ms >= RACE_MIN_MS && admitted &&
							    race_contended(rep - index)))
				break;
		}
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		want = 1 + (int)(x % RACE_MAX);
		if (held < want && shared_conns_admit(0, RACE_MAX, &open)) {
			held++;
			admitted++;
			now = shared_conns_total(0);
			over += now > RACE_MAX;
			if ((long)now > most)
				most = (long)now;
			continue;
		}
		if (held < want)
			__atomic_store_n(&rep->refused, ++refused, __ATOMIC_RELAXED);
		while (held > 0) {
			shared_conns_release();
			held--;
		}
	}
	while (held-- > 0)
		shared_conns_release();
	rep->admitted = admitted;
	rep->over = over;
	rep->most = most;
}

/* A process killed while it holds the lock does not stop the others: the
 * lock is robust, the next taker gets it (EOWNERDEAD, made consistent). An
 * alarm ends the test if the lock hangs instead. */
static void test_dead_holder(void **state)
{
	pid_t pid;
	int status = 0;

	(void)state;
	assert_int_equal(shared_init(2), SC_OK);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shared_lock();
		_exit(0); /* dies holding it */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	alarm(10);
	shared_lock();
	shared_unlock();
	shared_lock(); /* consistent again: an ordinary lock */
	shared_unlock();
	alarm(0);
}

static void test_two_processes_race(void **state)
{
	struct race_report *rep;
	pid_t pid[2];

	(void)state;
	rep = mmap(NULL, 2 * sizeof *rep, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	assert_true(rep != MAP_FAILED);
	memset(rep, 0, 2 * sizeof *rep);
	assert_int_equal(shared_conns_total(0), 0);
	for (unsigned i = 0; i < 2; i++) {
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0) {
			race(i, &rep[i], &rep[0].ready);
			_exit(0);
		}
	}
	for (unsigned i = 0; i < 2; i++) {
		int status;

		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	for (unsigned i = 0; i < 2; i++)
		print_message("process %u: %ld taken, %ld refused, at most %ld taken, %ld over\n",
			      i, rep[i].admitted, rep[i].refused, rep[i].most, rep[i].over);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(rep[i].over, 0);
		assert_true(rep[i].most <= RACE_MAX);
		/* both took places, and the limit was reached */
		assert_true(rep[i].admitted > 0);
	}
	assert_true(rep[0].refused > 0 && rep[1].refused > 0);
	/* every place given back */
	assert_int_equal(shared_conns_total(0), 0);
	munmap(rep, 2 * sizeof *rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_process),
		cmocka_unit_test(test_places),
		cmocka_unit_test(test_dead_process),
		cmocka_unit_test(test_dead_holder),
		cmocka_unit_test(test_two_processes_race),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
