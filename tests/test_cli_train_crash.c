/* Crash-safe training as a user meets it: runs killed with SIGKILL at
 * random moments (saves included, --save-every 1) always leave a loadable
 * checkpoint (or none before the first save), resuming it gives the
 * uninterrupted run's weights, optimizer state and losses bit for bit, and
 * the next save leaves no temp file behind; SIGINT and SIGTERM finish the
 * step, save, and exit with 130 and 143, and that checkpoint resumes the
 * exact run. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/checkpoint.h"
#include "tests/support/ckpt_edit.h"
#include "tests/support/cli_run.h"

static void make_dir(void) { test_dir_make("kiln_crash"); }

TestSuite(cli_crash, .init = make_dir, .fini = test_dir_remove, .timeout = 600);

static int kiln(const char *args) { return cli_run(KILN_CLI, NULL, args); }

/* A gpt small enough for the reference interpreter to take a few ms a
 * step: 60 date lines are 47 steps of 4 x 8 windows per epoch, so every
 * checkpoint of the first 47 steps comes from --save-every. */
#define GPT                                                                                        \
  "train gpt --set layers=1,embed=8,heads=2,block=8,max_examples=60,n_test=4,samples=0,"           \
  "backend=ref --batch 4 --threads 1 "
#define STEPS 8

#if defined(__SANITIZE_ADDRESS__)
#define KILLS 8
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILLS 8
#endif
#endif
#ifndef KILLS
#define KILLS 24
#endif

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Starts `kiln ARGS` in test_dir with stdout and stderr in files NAME.out
 * and NAME.err (the shell execs kiln, so the pid is kiln's). */
static pid_t spawn(const char *args, const char *name) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "XDG_CACHE_HOME=cache exec '%s' %s >%s.out 2>%s.err", KILN_CLI, args,
           name, name);
  pid_t p = fork();
  cr_assert_geq(p, 0);
  if (p == 0) {
    if (chdir(test_dir) != 0) _exit(127);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  return p;
}

static int wait_exit(pid_t p) {
  int st = 0;
  cr_assert_eq(waitpid(p, &st, 0), p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void slurp_in_dir(const char *name, char *buf, size_t cap) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", test_dir, name);
  test_slurp(path, buf, cap);
}

/* Names in test_dir that start with prefix. */
static int count_prefixed(const char *prefix) {
  DIR *d = opendir(test_dir);
  cr_assert_not_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    n += !strncmp(e->d_name, prefix, strlen(prefix));
  closedir(d);
  return n;
}

static void remove_prefixed(const char *prefix) {
  DIR *d = opendir(test_dir);
  cr_assert_not_null(d);
  for (struct dirent *e; (e = readdir(d));) {
    if (strncmp(e->d_name, prefix, strlen(prefix))) continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", test_dir, e->d_name);
    cr_assert_eq(unlink(path), 0, "%s", path);
  }
  closedir(d);
}

/* Every tensor and the step of test_dir/A and test_dir/B are the same. */
static void expect_same_checkpoint(const char *a, const char *b) {
  rt_checkpoint *x = test_ckpt_load(a), *y = test_ckpt_load(b);
  cr_expect_str_eq(rt_checkpoint_meta(x, RT_CKPT_STEP), rt_checkpoint_meta(y, RT_CKPT_STEP));
  cr_assert_eq(rt_checkpoint_count(x), rt_checkpoint_count(y));
  for (int i = 0; i < rt_checkpoint_count(x); i++) {
    const char *name = rt_checkpoint_name(x, i);
    const rt_tensor *s = rt_checkpoint_tensor(x, name), *t = rt_checkpoint_tensor(y, name);
    cr_assert_not_null(t, "%s: no tensor '%s'", b, name);
    cr_expect(s->bytes == t->bytes && !memcmp(s->data, t->data, s->bytes),
              "tensor '%s' differs between %s and %s", name, a, b);
  }
  rt_checkpoint_destroy(x);
  rt_checkpoint_destroy(y);
}

static double json_num(const char *key) {
  json_t *j = test_last_json();
  double v = json_number_value(json_object_get(j, key));
  json_decref(j);
  return v;
}

Test(cli_crash, sigkill_at_random_moments_never_loses_the_run) {
  /* The uninterrupted run: STEPS + 1 steps (a resumed run always takes at
   * least one step, so it always saves). */
  double t0 = now_ms();
  cr_assert_eq(kiln(GPT "--steps 9 --save full.ckpt --json"), 0, "%s", test_err);
  double full_ms = now_ms() - t0, full_val = json_num("val_loss");
  uint64_t rng = 0x9e3779b97f4a7c15u; /* seeded: the same delays every run */
  int absent = 0, resumed = 0, mid_epoch = 0, with_temp = 0;
  for (int k = 0; k < KILLS; k++) {
    remove_prefixed("ck.ckpt");
    pid_t p = spawn(GPT "--steps 8 --save ck.ckpt --save-every 1", "kill");
    rng = rng * 6364136223846793005u + 1442695040888963407u;
    long delay = (long)((double)(rng >> 11) / 9007199254740992.0 * full_ms * 1.3e3);
    if (k % 2) {
      /* Every other kill waits for the first checkpoint, then lands within
       * a step or two of it: compile time dominates the run (more so under
       * ASan), so delays drawn over the whole run alone could all miss the
       * steps and never kill a run holding a --save-every checkpoint. */
      for (int i = 0; i < 60000 && !test_exists("ck.ckpt"); i++)
        sleep_us(1000);
      delay %= 3000;
    }
    sleep_us(delay);
    kill(p, SIGKILL);
    wait_exit(p);
    with_temp += count_prefixed("ck.ckpt.tmp.") > 0;
    if (!test_exists("ck.ckpt")) {
      absent++; /* killed before the first save finished */
      continue;
    }
    cr_assert_eq(kiln(GPT "--steps 9 --load ck.ckpt --save ck.ckpt --json"), 0,
                 "kill %d after %ld us: %s", k, delay, test_err);
    const char *at = strstr(test_out, "resumed from ck.ckpt at step ");
    cr_assert_not_null(at, "%s", test_out);
    int step = atoi(at + strlen("resumed from ck.ckpt at step "));
    cr_expect(step >= 1 && step <= STEPS, "step %d", step);
    resumed++;
    mid_epoch += step < STEPS; /* only --save-every writes these */
    cr_expect_eq(json_num("val_loss"), full_val, "kill %d (step %d): %.17g vs %.17g", k, step,
                 json_num("val_loss"), full_val);
    expect_same_checkpoint("ck.ckpt", "full.ckpt");
    cr_expect_eq(count_prefixed("ck.ckpt.tmp."), 0, "kill %d: a temp file survived the save", k);
  }
  cr_log_info("%d kills: %d before the first save, %d resumed (%d mid-run), %d left a temp file",
              KILLS, absent, resumed, mid_epoch, with_temp);
  cr_expect_gt(resumed, 0, "no kill left a checkpoint: the delays miss the run");
  cr_expect_gt(mid_epoch, 0, "no checkpoint from --save-every before the last step");
}

/* Waits (up to 60 s) until test_dir/NAME holds needle. */
static void wait_for_text(const char *name, const char *needle) {
  static char buf[1 << 16];
  for (int i = 0; i < 6000; i++) {
    slurp_in_dir(name, buf, sizeof buf);
    if (strstr(buf, needle)) return;
    sleep_us(10000);
  }
  cr_assert_fail("no '%s' in %s: %s", needle, name, buf);
}

/* One long run stopped by sig once `ready` is on its stdout: the exit
 * status, the step it stopped after, and an exact resume from its
 * checkpoint (per-step losses: every epoch of this data is one step). */
static void stop_and_resume(const char *train, const char *ready, int sig, int second, int status) {
  char args[1024], err[4096];
  snprintf(args, sizeof args, "%s --steps 100000 --save sig.ckpt --json", train);
  pid_t p = spawn(args, "sig");
  wait_for_text("sig.out", ready);
  kill(p, sig);
  if (second) kill(p, second); /* arrives during the step or the save */
  int got = wait_exit(p);
  /* status 0: either signal may be the one handled first (they can land in
   * different threads at once); the message must name the one that was. */
  cr_assert(status ? got == status : got == 130 || got == 143, "exit %d, want %d", got, status);
  slurp_in_dir("sig.err", err, sizeof err);
  const char *name = got == 130 ? "SIGINT" : "SIGTERM";
  char want[128];
  snprintf(want, sizeof want, "stopped by %s after step ", name);
  const char *at = strstr(err, want);
  cr_assert_not_null(at, "%s", err);
  int step = atoi(at + strlen(want));
  cr_expect(strstr(err, "; saved sig.ckpt"), "%s", err);
  cr_assert_gt(step, 0);
  snprintf(args, sizeof args, "%s --steps %d --json", train, step + 2);
  cr_assert_eq(kiln(args), 0, "%s", test_err);
  json_t *full = test_last_json();
  snprintf(args, sizeof args, "%s --steps %d --load sig.ckpt --json", train, step + 2);
  cr_assert_eq(kiln(args), 0, "%s", test_err);
  json_t *res = test_last_json();
  json_t *fl = json_object_get(full, "epoch_losses"), *rl = json_object_get(res, "epoch_losses");
  cr_assert_eq(json_array_size(fl), (size_t)step + 2);
  cr_assert_eq(json_array_size(rl), 2);
  for (int i = 0; i < 2; i++) {
    double a = json_number_value(json_array_get(fl, (size_t)(step + i)));
    double b = json_number_value(json_array_get(rl, (size_t)i));
    cr_expect_eq(a, b, "step %d: %.17g vs %.17g", step + i + 1, a, b);
  }
  json_decref(full);
  json_decref(res);
  cr_expect_eq(count_prefixed("sig.ckpt.tmp."), 0);
}

/* Text of 219 characters: one step of 32 x 8 windows is an epoch. */
static void write_text(void) {
  test_write_text("t.txt", "the cat sat on a mat and the dog ran on the mat and a cat sat on "
                           "the dog and a mat ran on the cat the dog sat and ran on a mat the "
                           "cat and the dog sat on a mat and ran and sat on the cat and dog\n");
}

#define GPT_STEPS                                                                                  \
  "train gpt --data t.txt --set layers=1,embed=8,heads=2,block=8,samples=0,backend=ref "           \
  "--batch 32 --threads 1"

Test(cli_crash, sigint_saves_and_exits_130) {
  write_text();
  stop_and_resume(GPT_STEPS, "epoch 3 ", SIGINT, 0, 130);
}

/* A second signal while the first is being handled changes nothing: the
 * step and the save complete whole and the run resumes exactly. */
Test(cli_crash, second_signal_during_the_save_is_harmless) {
  write_text();
  stop_and_resume(GPT_STEPS, "epoch 2 ", SIGINT, SIGTERM, 0);
}

/* The translation models' loop: 32 dates in batches of 32, a step an epoch. */
Test(cli_crash, sigterm_saves_and_exits_143) {
  stop_and_resume("train seq2seq-attn --set embed=8,hidden=12,layers=2,max_examples=32,n_test=0,"
                  "samples=0,backend=ref,heatmap= --batch 32 --threads 1",
                  "epoch 2 ", SIGTERM, 0, 143);
}

/* nw-kernel has no checkpoints: it stops after the step and says so. */
Test(cli_crash, sigterm_stops_nw_kernel) {
  pid_t p = spawn("train nw-kernel --epochs 1000000 --set backend=ref", "nw");
  wait_for_text("nw.out", "epoch 20,");
  kill(p, SIGTERM);
  cr_expect_eq(wait_exit(p), 143);
  char err[4096];
  slurp_in_dir("nw.err", err, sizeof err);
  cr_expect(strstr(err, "stopped by SIGTERM after step ") && strstr(err, "nothing saved"), "%s",
            err);
  cr_expect(!test_exists("nw_kernel_fit.svg"), "an interrupted run writes no figure");
}
