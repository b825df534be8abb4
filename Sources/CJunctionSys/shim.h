// Linux calls that Glibc's Swift overlay does not expose. Declared here rather than by
// defining _GNU_SOURCE, which would change struct layouts the Glibc module already has.
#pragma once
#include <sys/vfs.h>

extern int setns(int fd, int nstype);

static inline int junction_setns_net(int fd) { return setns(fd, 0x40000000 /* CLONE_NEWNET */); }

/// statfs f_type of an open file (NSFS_MAGIC for namespace files), or -1.
static inline long junction_fs_type(int fd) {
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return -1;
  return (long)fs.f_type;
}
