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

#include <errno.h>
#include <unistd.h>

/// A duplicate, in this process, of descriptor `target_fd` of process `pid` (pidfd_open +
/// pidfd_getfd, Linux 5.6; needs ptrace access to `pid`), close-on-exec; -1 with errno.
/// Syscall numbers are the same on every architecture for these (424 and later).
static inline int junction_pidfd_getfd(int pid, int target_fd) {
  int pidfd = (int)syscall(434 /* pidfd_open */, pid, 0);
  if (pidfd < 0) return -1;
  int fd = (int)syscall(438 /* pidfd_getfd */, pidfd, target_fd, 0);
  int saved = errno;
  close(pidfd);
  errno = saved;
  return fd;
}

#include <malloc.h>

/// The agent's allocator settings (see FreedMemory.swift): a fixed mmap threshold, so that
/// glibc does not raise it (up to 32 MiB) each time a large buffer is freed and then serve
/// the next large buffers from the arenas, where they fragment the long-lived heap.
static inline void junction_malloc_fix_mmap_threshold(int bytes) {
  mallopt(M_MMAP_THRESHOLD, bytes);
}

/// Releases the free pages of every arena (malloc_trim(0)); 1 if memory was released.
static inline int junction_malloc_trim(void) { return malloc_trim(0); }
