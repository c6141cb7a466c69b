/*
 * outfile.h
 *    Writing one output file safely: the only way the engine creates a file.
 *
 * A regular target is written to a new hidden file in its own folder,
 * ".NAME.refinery.XXXXXX", created by mkstemp (mode 0600, never through a
 * link, never at a name another program can guess) and held with an
 * exclusive flock while it is written; commit syncs it, gives it its final
 * mode and renames it over the target, so a reader sees the old file or
 * the whole new one.  Leftovers of killed writers of the same target are
 * removed when the next write starts, unless a live writer still holds
 * them.  A character device or a FIFO (/dev/null, /dev/stdout onto a pipe,
 * a named pipe) is written in place and never replaced; a symbolic link
 * to anything else, a folder, a block device or a socket is refused.
 * "-" is standard output.
 */
#ifndef REFINERY_OUTFILE_H
#define REFINERY_OUTFILE_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "error.h"

/* The mode of a file nobody chose one for: the owner's alone. */
#define OUTFILE_MODE_PRIVATE 0600

struct outfile;

/*
 * Parse an octal permission mode such as "0640" or "640": one to four octal
 * digits, at most 0777.  Returns false, *mode untouched, on anything else.
 */
bool outfile_parse_mode(const char *s, mode_t *mode);

/*
 * Start writing `path` with the permission bits `mode` (exactly these; the
 * umask does not apply).  Returns NULL with err filled (EXIT_DATA) when the
 * target cannot be written; the target is then untouched.  The returned
 * object owns its stream; end it with outfile_commit() or outfile_abort().
 */
struct outfile *outfile_open(const char *path, mode_t mode, struct error *err);

/* The stream to write to (borrowed; valid until commit or abort). */
FILE *outfile_stream(const struct outfile *f);

/* The target's name, for messages (borrowed, as long as f). */
const char *outfile_path(const struct outfile *f);

/*
 * Make the written bytes the target: flush and check every write; for a
 * regular target also fsync, set the mode, rename over the target and fsync
 * the folder.  Always releases f; on failure the temporary file is removed
 * and a regular target is as before.  A write error (ENOSPC on /dev/full, a
 * full disk) is an EXIT_DATA error naming the target.
 */
bool outfile_commit(struct outfile *f, struct error *err);

/* Drop everything written: remove the temporary file, release f. NULL is a no-op. */
void outfile_abort(struct outfile *f);

#endif /* REFINERY_OUTFILE_H */
