/* The SVG writers (runtime/svg.h): documents are well-formed XML (checked
 * by a small structural parser below, independent of the writer), carry
 * every series name and one rect per heatmap cell, escape text, and a
 * failed write leaves no file behind. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/svg.h"
#include "runtime/svg_internal.h"
#include "tests/support/cli_run.h"

/* ---- a structural XML check ------------------------------------------------ */

/* Balanced tags (a stack of names), quoted attributes without '<', entities
 * limited to XML's five and numeric ones, one root element <svg>, the
 * <?xml?> declaration first. Returns NULL or what is wrong. */
static const char *xml_check(const char *s) {
  static char why[256];
  char stack[64][32];
  int depth = 0, roots = 0;
  if (strncmp(s, "<?xml ", 6) != 0) return "no XML declaration";
  const char *p = strstr(s, "?>");
  if (!p) return "unterminated declaration";
  p += 2;
  while (*p) {
    if (*p == '&') {
      static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"};
      bool ok = false;
      for (int i = 0; i < 6; i++)
        ok |= strncmp(p, ents[i], strlen(ents[i])) == 0;
      if (!ok) return "bare '&'";
      p++;
      continue;
    }
    if (*p == '>') return "bare '>' in text";
    if (*p != '<') {
      p++;
      continue;
    }
    bool closing = p[1] == '/';
    const char *name = p + 1 + closing;
    size_t n = strcspn(name, " \t\n/>");
    if (n == 0 || n >= 32) return "bad tag name";
    const char *q = name + n;
    /* Attributes: name="value" pairs. */
    while (*q && *q != '>' && !(q[0] == '/' && q[1] == '>')) {
      if (*q == ' ' || *q == '\n' || *q == '\t') {
        q++;
        continue;
      }
      if (closing) return "attribute on a closing tag";
      size_t an = strcspn(q, "=> ");
      if (an == 0 || q[an] != '=' || q[an + 1] != '"') return "attribute without =\"...\"";
      const char *v = q + an + 2, *end = strchr(v, '"');
      if (!end) return "unterminated attribute";
      for (const char *c = v; c < end; c++)
        if (*c == '<') return "'<' in an attribute";
      q = end + 1;
    }
    if (!*q) return "unterminated tag";
    bool self = q[0] == '/';
    if (closing) {
      if (depth == 0) return "closing tag without an open one";
      depth--;
      if (strlen(stack[depth]) != n || strncmp(stack[depth], name, n) != 0) {
        snprintf(why, sizeof why, "</%.*s> closes <%.31s>", (int)n, name, stack[depth]);
        return why;
      }
    } else if (!self) {
      if (depth == 0) {
        roots++;
        if (n != 3 || strncmp(name, "svg", 3) != 0) return "root is not <svg>";
      }
      if (depth == 64) return "too deep";
      memcpy(stack[depth], name, n);
      stack[depth++][n] = 0;
    }
    p = q + (self ? 2 : 1);
  }
  if (depth) return "unclosed tags at the end";
  return roots == 1 ? NULL : "not exactly one root element";
}

static int count(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
    n++;
  return n;
}

Test(svg, checker_rejects_broken_documents) {
  cr_expect_null(xml_check("<?xml version=\"1.0\"?><svg a=\"1\"><g/><text>x &amp; y</text></svg>"));
  cr_expect_not_null(xml_check("<?xml version=\"1.0\"?><svg><g></svg>"));
  cr_expect_not_null(xml_check("<?xml version=\"1.0\"?><svg><text>a & b</text></svg>"));
  cr_expect_not_null(xml_check("<?xml version=\"1.0\"?><svg a=\"<\"></svg>"));
  cr_expect_not_null(xml_check("<?xml version=\"1.0\"?><svg></svg><svg></svg>"));
}

/* ---- plots -------------------------------------------------------------------- */

static const double xs[] = {0, 1, 2, 3, 4}, ys[] = {1, -2, 0.5, NAN, 3};

Test(svg, plot_is_well_formed_with_every_series) {
  rt_svg_series s[] = {{"truth", xs, ys, 5, RT_SVG_LINE},
                       {"pred <b> & \"q\"", xs, xs, 5, RT_SVG_DASHED},
                       {"data", xs, ys, 5, RT_SVG_POINTS}};
  rt_svg_plot p = {.title = "T & t", .xlabel = "x", .ylabel = "y", .nseries = 3, .series = s};
  ir_diag d = {0};
  char *t = rt_svg_plot_text(&p, &d);
  cr_assert_not_null(t, "%s", d.msg);
  const char *why = xml_check(t);
  cr_expect_null(why, "%s", why);
  cr_expect(strstr(t, ">truth</text>"));
  cr_expect(strstr(t, ">pred &lt;b&gt; &amp; &quot;q&quot;</text>"), "escaped name missing");
  cr_expect(strstr(t, ">T &amp; t</text>"));
  /* The NaN point splits the line in two; the points skip it. */
  cr_expect_eq(count(t, "<polyline"), 3, "two runs of 'truth' plus one dashed line");
  cr_expect_eq(count(t, "<circle"), 4 + 1, "4 finite points plus the legend marker");
  cr_expect_eq(count(t, "stroke-dasharray"), 2, "the dashed series and its legend line");
  free(t);
}

Test(svg, plot_refuses_bad_input) {
  ir_diag d = {0};
  rt_svg_plot p = {.nseries = 0};
  cr_expect_null(rt_svg_plot_text(&p, &d));
  cr_expect(strstr(d.msg, "at least one series"), "%s", d.msg);
  rt_svg_series s = {"s", NULL, ys, 5, RT_SVG_LINE};
  p = (rt_svg_plot){.nseries = 1, .series = &s};
  cr_expect_null(rt_svg_plot_text(&p, &d));
  cr_expect(strstr(d.msg, "'s'"), "%s", d.msg);
  /* No finite data at all still draws axes. */
  double nan[2] = {NAN, NAN};
  s = (rt_svg_series){"empty", nan, nan, 2, RT_SVG_LINE};
  char *t = rt_svg_plot_text(&p, &d);
  cr_assert_not_null(t, "%s", d.msg);
  cr_expect_null(xml_check(t));
  free(t);
}

/* ---- heatmaps ----------------------------------------------------------------- */

Test(svg, heatmap_has_one_cell_per_value_and_labels) {
  enum { R = 3, C = 4 };
  double v[R * C];
  for (int i = 0; i < R * C; i++)
    v[i] = i / 11.0;
  v[5] = NAN;
  const char *rows[R] = {"<bos>", "je", "t'aime"};
  const char *cols[C] = {"i", "love", "you", "\xff&"};
  rt_svg_heatmap h = {.title = "attention",
                      .xlabel = "keys",
                      .ylabel = "queries",
                      .rows = R,
                      .cols = C,
                      .values = v,
                      .row_labels = rows,
                      .col_labels = cols};
  ir_diag d = {0};
  char *t = rt_svg_heatmap_text(&h, &d);
  cr_assert_not_null(t, "%s", d.msg);
  const char *why = xml_check(t);
  cr_expect_null(why, "%s", why);
  cr_expect_eq(count(t, "class=\"cell\""), R * C);
  cr_expect_eq(count(t, "fill=\"#bbbbbb\""), 1, "the NaN cell is grey");
  cr_expect(strstr(t, ">&lt;bos&gt;</text>"));
  cr_expect(strstr(t, ">t&apos;aime</text>"));
  cr_expect(strstr(t, ">\xEF\xBF\xBD&amp;</text>"), "invalid UTF-8 becomes U+FFFD");
  cr_expect(strstr(t, "class=\"colorbar\""));
  /* The extremes get viridis' ends. */
  cr_expect(strstr(t, "fill=\"#440154\""));
  cr_expect(strstr(t, "fill=\"#fde725\""));
  free(t);
}

Test(svg, big_heatmap_thins_index_labels) {
  enum { R = 50, C = 50 };
  static double v[R * C];
  for (int i = 0; i < R * C; i++)
    v[i] = (i * 7919) % 101;
  rt_svg_heatmap h = {.rows = R, .cols = C, .values = v};
  ir_diag d = {0};
  char *t = rt_svg_heatmap_text(&h, &d);
  cr_assert_not_null(t, "%s", d.msg);
  cr_expect_null(xml_check(t));
  cr_expect_eq(count(t, "class=\"cell\""), R * C);
  /* Index labels at multiples of a round step, fewer than the rows. */
  int nlab = count(strstr(t, "class=\"row-labels\""), "<text") -
             count(strstr(t, "class=\"col-labels\""), "<text");
  cr_expect(nlab > 0 && nlab < R, "%d row labels", nlab);
  free(t);
}

Test(svg, heatmap_refuses_bad_input) {
  ir_diag d = {0};
  double v = 1;
  rt_svg_heatmap h = {.rows = 0, .cols = 1, .values = &v};
  cr_expect_null(rt_svg_heatmap_text(&h, &d));
  h = (rt_svg_heatmap){.rows = 1, .cols = 1, .values = NULL};
  cr_expect_null(rt_svg_heatmap_text(&h, &d));
  h = (rt_svg_heatmap){.rows = 2000000, .cols = 2000000, .values = &v};
  cr_expect_null(rt_svg_heatmap_text(&h, &d));
  cr_expect(strstr(d.msg, "too many"), "%s", d.msg);
  /* A constant matrix still has a colour scale. */
  h = (rt_svg_heatmap){.rows = 1, .cols = 1, .values = &v};
  char *t = rt_svg_heatmap_text(&h, &d);
  cr_assert_not_null(t);
  cr_expect_null(xml_check(t));
  free(t);
}

/* ---- axes ------------------------------------------------------------------------ */

/* The i-th cell's fill colour ("#rrggbb") into out (empty if none). */
static void nth_fill(const char *t, int i, char out[8]) {
  out[0] = 0;
  const char *p = t;
  for (int k = 0; p && k <= i; k++)
    if ((p = strstr(p, "class=\"cell\""))) p++;
  if (!p || !(p = strstr(p, "fill=\"#"))) return;
  memcpy(out, p + 6, 7);
  out[7] = 0;
}

Test(svg, heatmap_panels_share_one_scale) {
  enum { P = 4, R = 3, C = 5 };
  double v[P * R * C];
  /* Each panel spans a different range; the global min -2 is in panel 3 and
   * the global max 5 in panel 2; cell (0, 1) of panel 0 is 5 as well. */
  for (int i = 0; i < P * R * C; i++)
    v[i] = (i % 7) * 0.5;
  v[2 * R * C + 7] = 5;
  v[0 * R * C + 1] = 5;
  v[3 * R * C + 11] = -2;
  v[1 * R * C + 4] = NAN;
  const char *titles[P] = {"head 0", "head <1> & \"x\"", "head 2", NULL};
  const char *rows[R] = {"a", "b", "c"};
  rt_svg_heatmap h = {.title = "heads",
                      .xlabel = "keys",
                      .ylabel = "queries",
                      .rows = R,
                      .cols = C,
                      .values = v,
                      .row_labels = rows,
                      .panels = P,
                      .panel_titles = titles};
  ir_diag d = {0};
  char *t = rt_svg_heatmap_text(&h, &d);
  cr_assert_not_null(t, "%s", d.msg);
  const char *why = xml_check(t);
  cr_expect_null(why, "%s", why);
  cr_expect_eq(count(t, "class=\"cell\""), P * R * C);
  cr_expect_eq(count(t, "class=\"colorbar\""), 1, "one colour bar for all panels");
  cr_expect_eq(count(t, "fill=\"#bbbbbb\""), 1, "the NaN cell is grey");
  cr_expect(strstr(t, ">head 0</text>"));
  cr_expect(strstr(t, ">head &lt;1&gt; &amp; &quot;x&quot;</text>") ||
                strstr(t, ">head &lt;1&gt; &amp; \"x\"</text>"),
            "the title is escaped");
  cr_expect(strstr(t, ">head 2</text>"));
  cr_expect_eq(count(t, ">a</text>"), 1, "row labels once, left of the first panel");
  /* Shared scale: both 5s get viridis' top colour; -2 (only in panel 3) its
   * bottom; 1.5 is (1.5 + 2) / 7 = 0.5 up the scale in every panel: between
   * stops 4 (#26828e) and 5 (#1f9e89) at f = 0.5 -> #23908c. */
  char f[8];
  nth_fill(t, 2 * R * C + 7, f);
  cr_expect_str_eq(f, "#fde725");
  nth_fill(t, 0 * R * C + 1, f);
  cr_expect_str_eq(f, "#fde725");
  nth_fill(t, 3 * R * C + 11, f);
  cr_expect_str_eq(f, "#440154");
  cr_expect_eq(count(t, "fill=\"#fde725\""), 2);
  cr_expect_eq(count(t, "fill=\"#440154\""), 1);
  for (int p = 0; p < P; p++) {
    int i = 3 + 14 * p; /* (i % 7) * 0.5 = 1.5; 3, 17, 31, 45 lie in panels 0..3 */
    cr_assert(i / (R * C) == p);
    nth_fill(t, i, f);
    cr_expect_str_eq(f, "#23908c", "panel %d: %s", p, f);
  }
  free(t);
}

Test(svg, heatmap_one_panel_is_the_plain_heatmap) {
  double v[6] = {0, 0.2, 0.4, 0.6, 0.8, 1};
  const char *titles[1] = {"head 0"};
  rt_svg_heatmap h = {.title = "one", .rows = 2, .cols = 3, .values = v};
  ir_diag d = {0};
  char *a = rt_svg_heatmap_text(&h, &d);
  h.panels = 1;
  char *b = rt_svg_heatmap_text(&h, &d);
  h.panel_titles = titles;
  char *c = rt_svg_heatmap_text(&h, &d);
  cr_assert(a && b && c, "%s", d.msg);
  cr_expect_str_eq(a, b);
  cr_expect_str_eq(a, c);
  free(a);
  free(b);
  free(c);
}

Test(svg, heatmap_panels_refuse_bad_input) {
  static double v[4] = {0};
  rt_svg_heatmap h = {.rows = 2, .cols = 2, .values = v, .panels = -1};
  ir_diag d = {0};
  cr_expect_null(rt_svg_heatmap_text(&h, &d));
  cr_expect(strstr(d.msg, "panels is -1"), "%s", d.msg);
  /* The cell limit counts every panel (checked before values are read). */
  h.rows = 1000, h.cols = 1000, h.panels = 2;
  cr_expect_null(rt_svg_heatmap_text(&h, &d));
  cr_expect(strstr(d.msg, "2 panels of 1000 x 1000"), "%s", d.msg);
  h.rows = 2, h.cols = 2, h.panels = INT64_MAX;
  cr_expect_null(rt_svg_heatmap_text(&h, &d));
  cr_expect(strstr(d.msg, "too many"), "%s", d.msg);
}

Test(svg, nice_axes) {
  svg_axis a = svg_nice_axis(0, 4.9, 6);
  cr_expect_float_eq(a.lo, 0, 1e-12);
  cr_expect_float_eq(a.hi, 5, 1e-12);
  cr_expect_float_eq(a.step, 1, 1e-12);
  a = svg_nice_axis(-0.33, 0.71, 5);
  cr_expect_float_eq(a.step, 0.2, 1e-12);
  cr_expect_float_eq(a.lo, -0.4, 1e-12);
  cr_expect_float_eq(a.hi, 0.8, 1e-12);
  char buf[32];
  svg_tick_label(&a, -1e-17, buf, sizeof buf);
  cr_expect_str_eq(buf, "0.0");
  a = svg_nice_axis(3, 3, 5); /* a single value gets a range around it */
  cr_expect(a.lo < 3 && a.hi > 3);
}

/* ---- files ----------------------------------------------------------------------- */

static void make_dir(void) { test_dir_make("kiln_svg"); }

static int entries(const char *path) {
  DIR *dp = opendir(path);
  cr_assert_not_null(dp);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dp)))
    n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(dp);
  return n;
}

TestSuite(svg_files, .init = make_dir, .fini = test_dir_remove);

Test(svg_files, write_replaces_atomically) {
  rt_svg_series s = {"a", xs, xs, 5, RT_SVG_LINE};
  rt_svg_plot p = {.nseries = 1, .series = &s};
  char path[512];
  snprintf(path, sizeof path, "%s/fig.svg", test_dir);
  ir_diag d = {0};
  cr_assert(rt_svg_plot_write(&p, path, &d), "%s", d.msg);
  cr_assert(rt_write_file_atomic(path, "old", 3, &d));
  cr_expect_eq(chmod(path, 0640), 0);
  cr_assert(rt_svg_plot_write(&p, path, &d), "%s", d.msg);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  cr_expect_null(xml_check(buf));
  struct stat sb;
  cr_assert_eq(stat(path, &sb), 0);
  cr_expect_eq(sb.st_mode & 0777, 0640, "the replaced file's mode is kept");
  cr_expect_eq(entries(test_dir), 1, "no temporary file left");
}

Test(svg_files, failed_write_leaves_nothing) {
  double v[4] = {0, 1, 2, 3};
  rt_svg_heatmap h = {.rows = 2, .cols = 2, .values = v};
  ir_diag d = {0};
  char path[512];
  /* A directory that does not exist. */
  snprintf(path, sizeof path, "%s/missing/heat.svg", test_dir);
  cr_expect_not(rt_svg_heatmap_write(&h, path, &d));
  cr_expect(strstr(d.msg, "missing/heat.svg"), "%s", d.msg);
  /* The target is a directory: the rename fails after the temp file was
   * written, and the temp file must go. */
  snprintf(path, sizeof path, "%s/sub", test_dir);
  cr_assert_eq(mkdir(path, 0755), 0);
  d = (ir_diag){0};
  cr_expect_not(rt_svg_heatmap_write(&h, path, &d));
  cr_expect(d.msg[0]);
  cr_expect_eq(entries(test_dir), 1, "only the directory 'sub' remains");
  cr_expect_eq(entries(path), 0);
  /* Bad input never touches the disk. */
  snprintf(path, sizeof path, "%s/bad.svg", test_dir);
  h.rows = 0;
  cr_expect_not(rt_svg_heatmap_write(&h, path, &d));
  cr_expect_neq(access(path, F_OK), 0);
}
