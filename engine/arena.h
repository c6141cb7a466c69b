/*
 * arena.h
 *    A bump allocator for the many small strings of a batch.
 *
 * Memory comes from large chunks and is freed all at once by arena_free();
 * single allocations are never freed.  Not thread-safe: one arena per thread.
 */
#ifndef REFINERY_ARENA_H
#define REFINERY_ARENA_H

#include <stddef.h>

struct arena;

struct arena *arena_new(size_t chunk_size);      /* 0 = default (1 MiB); NULL on OOM */
void arena_free(struct arena *a);                /* NULL is a no-op */
void *arena_alloc(struct arena *a, size_t size); /* 8-byte aligned; NULL on OOM */
char *arena_strndup(struct arena *a, const char *s, size_t len); /* adds the NUL; unaligned */
char *arena_strdup(struct arena *a, const char *s);

#endif /* REFINERY_ARENA_H */
