/*
 * arena.c
 *    A bump allocator for the many small strings of a batch.
 *
 * Chunks form a singly linked list, newest first; an allocation larger than
 * a quarter of the chunk size gets a chunk of its own, so big values waste
 * no space.  Everything is released by arena_free().
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define ARENA_DEFAULT_CHUNK (1u << 20)

struct chunk
{
	struct chunk *next;
	size_t size; /* usable bytes in data[] */
	size_t used;
	_Alignas(8) unsigned char data[];
};

struct arena
{
	struct chunk *head;
	size_t chunk_size;
};

struct arena *
arena_new(size_t chunk_size)
{
	struct arena *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->chunk_size = chunk_size ? chunk_size : ARENA_DEFAULT_CHUNK;
	return a;
}

void
arena_free(struct arena *a)
{
	struct chunk *c, *next;

	if (a == NULL)
		return;
	for (c = a->head; c != NULL; c = next)
	{
		next = c->next;
		free(c);
	}
	free(a);
}

static struct chunk *
chunk_new(struct arena *a, size_t size)
{
	struct chunk *c = malloc(sizeof(*c) + size);

	if (c == NULL)
		return NULL;
	c->size = size;
	c->used = 0;
	return c;
}

/* size bytes aligned to align (1 or 8) */
static void *
alloc_aligned(struct arena *a, size_t size, size_t align)
{
	struct chunk *c = a->head;
	size_t need = (size + align - 1) & ~(align - 1);
	size_t start;
	void *p;

	if (need < size)
		return NULL; /* overflow */
	if (need > a->chunk_size / 4)
	{
		/* a big value: its own chunk, linked behind the current one */
		struct chunk *big = chunk_new(a, need);

		if (big == NULL)
			return NULL;
		big->used = need;
		if (c != NULL)
		{
			big->next = c->next;
			c->next = big;
		}
		else
		{
			big->next = NULL;
			a->head = big;
		}
		return big->data;
	}
	start = c ? (c->used + align - 1) & ~(align - 1) : 0;
	if (c == NULL || start > c->size || c->size - start < need)
	{
		c = chunk_new(a, a->chunk_size);
		if (c == NULL)
			return NULL;
		c->next = a->head;
		a->head = c;
		start = 0;
	}
	p = c->data + start;
	c->used = start + need;
	return p;
}

void *
arena_alloc(struct arena *a, size_t size)
{
	return alloc_aligned(a, size, 8);
}

char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
	/* text needs no alignment: packed, a million short values take a third less */
	char *p = len + 1 > len ? alloc_aligned(a, len + 1, 1) : NULL;

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}
