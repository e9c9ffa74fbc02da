/* kiln — the command-line driver (DESIGN.md, "The CLI"). */
#include <stdio.h>
int main(void) {
  puts("kiln");
  return 0;
}
