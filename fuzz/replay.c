/* replay.c -- runs a fuzz target over the files of a corpus, without
 * libFuzzer: `make check` replays the committed seed corpus this way. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX (1 << 20)

static int replay_file(const char *path) {
  static uint8_t buf[REPLAY_MAX];
  FILE *f = fopen(path, "rb");
  size_t n;
  if (!f) {
    perror(path);
    return -1;
  }
  n = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  LLVMFuzzerTestOneInput(buf, n);
  return 0;
}

static int replay_dir(const char *dir, int *count) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[4096];
  if (!d) {
    perror(dir);
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (replay_file(path) != 0) {
      closedir(d);
      return -1;
    }
    (*count)++;
  }
  closedir(d);
  return 0;
}

int main(int argc, char **argv) {
  int i, count = 0;
  for (i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      return 1;
    }
    if (S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count) : replay_file(argv[i])) 
      return 1;
    count += !S_ISDIR(st.st_mode);
  }
  printf("fuzz replay: %d inputs, no failure\n", count);
  return count > 0 ? 0 : 1;
}
