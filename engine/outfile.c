/*
 * outfile.c
 *    Writing one output file safely: temporary file, lock, sync, rename; or
 *    in place for devices and FIFOs.
 *
 * The target is looked at once with lstat (and stat through a link) to
 * choose how to write it; the choice is checked again on what was actually
 * opened, so a target swapped meanwhile is refused, never followed.  The
 * temporary file's name is made by mkstemp (O_EXCL), so a
 * planted file or link at any name is never opened.  Its flock is what
 * tells a live writer from a dead one: the sweep at the start of a write
 * removes only the same target's temporary files whose lock it can take,
 * and a writer that finds its own fresh file locked or gone (a sweep got
 * there between mkstemp and flock) simply makes another.  An outfile owns
 * its stream, its stdio buffer and its strings; nothing is global.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "outfile.h"

#define WRITE_BUFFER (256 * 1024)
#define TEMP_TAG     ".refinery."
#define TEMP_XS      "XXXXXX"
#define CREATE_TRIES 16

enum outfile_kind
{
	OUTFILE_STDOUT,   /* "-": the process's standard output */
	OUTFILE_IN_PLACE, /* a character device or a FIFO, written as it is */
	OUTFILE_REPLACE   /* a regular file (or none yet): temporary file, then rename */
};

struct outfile
{
	enum outfile_kind kind;
	FILE *fp;
	char *path; /* the target */
	char *tmp;  /* OUTFILE_REPLACE: the temporary file; NULL once renamed */
	char *dir;  /* OUTFILE_REPLACE: the target's folder, fsynced after the rename */
	char *buf;  /* stdio buffer of fp; freed after fclose */
	mode_t mode;
};

bool
outfile_parse_mode(const char *s, mode_t *mode)
{
	unsigned v = 0;
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n]; n++)
	{
		if (s[n] < '0' || s[n] > '7' || n >= 4)
			return false;
		v = v * 8 + (unsigned) (s[n] - '0');
	}
	if (n == 0 || v > 0777)
		return false;
	*mode = (mode_t) v;
	return true;
}

static void
release(struct outfile *f)
{
	free(f->path);
	free(f->tmp);
	free(f->dir);
	free(f->buf);
	free(f);
}

/* Is `name` ".<base>.refinery.XXXXXX", a temporary file of the target `base`? */
static bool
is_temp_of(const char *name, const char *base)
{
	size_t bl = strlen(base), tl = strlen(TEMP_TAG);

	if (name[0] != '.' || strncmp(name + 1, base, bl) != 0 ||
	    strncmp(name + 1 + bl, TEMP_TAG, tl) != 0)
		return false;
	name += 1 + bl + tl;
	if (strlen(name) != strlen(TEMP_XS))
		return false;
	for (; *name; name++)
		if (!isalnum((unsigned char) *name))
			return false;
	return true;
}

/*
 * Remove what killed writers of this target left behind.  A file whose
 * lock cannot be taken belongs to a live writer and stays; so does anything
 * that is not a regular file (links are not followed).  Best effort: a
 * folder that cannot be listed is simply not swept.
 */
static void
remove_stale(const char *dir, const char *base)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
	{
		struct stat held, named;
		int fd;

		if (!is_temp_of(e->d_name, base))
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* unlink only the file locked: the name must still be that file */
		if (fstat(fd, &held) == 0 && S_ISREG(held.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    fstatat(dirfd(d), e->d_name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
		    held.st_dev == named.st_dev && held.st_ino == named.st_ino)
			unlinkat(dirfd(d), e->d_name, 0);
		close(fd);
	}
	closedir(d);
}

/* fsync a folder so that a rename in it survives a crash. */
static bool
fsync_dir(const char *dir, struct error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e;

	if (fd < 0)
		return error_set(err, EXIT_DATA, "could not open folder \"%s\": %s", dir, strerror(errno));
	/* some file systems cannot fsync a folder: that is no failure */
	if (fsync(fd) != 0 && errno != EINVAL && errno != EBADF)
	{
		e = errno;
		close(fd);
		return error_set(err, EXIT_DATA, "could not fsync folder \"%s\": %s", dir, strerror(e));
	}
	close(fd);
	return true;
}

/* The stream on fd, fully buffered; closes fd on failure. */
static bool
attach_stream(struct outfile *f, int fd, struct error *err)
{
	if ((f->fp = fdopen(fd, "w")) == NULL)
	{
		error_set(err, EXIT_DATA, "could not open file \"%s\": %s", f->path, strerror(errno));
		close(fd);
		return false;
	}
	if ((f->buf = malloc(WRITE_BUFFER)) == NULL)
	{
		error_oom(err);
		fclose(f->fp);
		f->fp = NULL;
		return false;
	}
	setvbuf(f->fp, f->buf, _IOFBF, WRITE_BUFFER);
	return true;
}

/* A character device or FIFO: open it as it is, no O_CREAT, no O_TRUNC. */
static bool
open_in_place(struct outfile *f, struct error *err)
{
	struct stat st;
	int fd = open(f->path, O_WRONLY | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return error_set(err, EXIT_DATA, "could not open file \"%s\": %s", f->path,
		                 strerror(errno));
	if (fstat(fd, &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)))
	{
		close(fd);
		return error_set(err, EXIT_DATA,
		                 "could not write file \"%s\": it changed while it was opened", f->path);
	}
	f->kind = OUTFILE_IN_PLACE;
	return attach_stream(f, fd, err);
}

/* A regular target: sweep, then a fresh locked temporary file beside it. */
static bool
open_replace(struct outfile *f, const char *base, struct error *err)
{
	size_t dirlen = (size_t) (base - f->path);
	size_t tmplen = dirlen + 1 + strlen(base) + strlen(TEMP_TAG) + strlen(TEMP_XS) + 1;

	f->kind = OUTFILE_REPLACE;
	f->dir = dirlen == 0 ? strdup(".") : dirlen == 1 ? strdup("/") : strndup(f->path, dirlen - 1);
	if (f->dir == NULL || (f->tmp = malloc(tmplen)) == NULL)
		return error_oom(err);
	remove_stale(f->dir, base);
	for (int t = 0; t < CREATE_TRIES; t++)
	{
		struct stat held, named;
		int fd;

		snprintf(f->tmp, tmplen, "%.*s.%s%s%s", (int) dirlen, f->path, base, TEMP_TAG, TEMP_XS);
		/* 0600, O_EXCL: never an existing file, never through a link */
		if ((fd = mkstemp(f->tmp)) < 0)
		{
			error_set(err, EXIT_DATA,
			          "could not create a temporary file for \"%s\" in folder \"%s\": %s", f->path,
			          f->dir, strerror(errno));
			free(f->tmp);
			f->tmp = NULL;
			return false;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0)
		{
			int e = errno;

			close(fd);
			if (e == EWOULDBLOCK)
				continue; /* another write's sweep holds it, and removes it */
			unlink(f->tmp);
			free(f->tmp);
			f->tmp = NULL;
			return error_set(err, EXIT_DATA, "could not lock a temporary file for \"%s\": %s",
			                 f->path, strerror(e));
		}
		if (fstat(fd, &held) == 0 && lstat(f->tmp, &named) == 0 && held.st_dev == named.st_dev &&
		    held.st_ino == named.st_ino)
		{
			if (attach_stream(f, fd, err))
				return true;
			unlink(f->tmp);
			free(f->tmp);
			f->tmp = NULL;
			return false;
		}
		close(fd); /* swept between mkstemp and flock: the name is not ours now */
	}
	free(f->tmp);
	f->tmp = NULL;
	return error_set(err, EXIT_DATA,
	                 "could not create a temporary file for \"%s\" in folder \"%s\": every name "
	                 "tried was taken",
	                 f->path, f->dir);
}

struct outfile *
outfile_open(const char *path, mode_t mode, struct error *err)
{
	struct outfile *f = calloc(1, sizeof(*f));
	struct stat st;
	const char *slash, *base;
	bool ok;

	if (f == NULL || (f->path = strdup(path)) == NULL)
	{
		free(f);
		error_oom(err);
		return NULL;
	}
	f->mode = mode & 0777;
	if (strcmp(path, "-") == 0)
	{
		f->kind = OUTFILE_STDOUT;
		f->fp = stdout;
		return f;
	}
	/* base points into f->path: open_replace() takes the folder from before it */
	slash = strrchr(f->path, '/');
	base = slash ? slash + 1 : f->path;
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
	{
		error_set(err, EXIT_DATA, "invalid output file name \"%s\"", path);
		goto fail;
	}
	if (lstat(path, &st) == 0)
	{
		bool link = S_ISLNK(st.st_mode);

		if (link && stat(path, &st) != 0)
			st.st_mode = S_IFLNK; /* a dangling link */
		if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))
			ok = open_in_place(f, err);
		else if (S_ISDIR(st.st_mode))
			ok = error_set(err, EXIT_DATA, "could not write file \"%s\": it is a folder", path);
		else if (link)
		{
			error_set(err, EXIT_DATA, "could not write file \"%s\": it is a symbolic link", path);
			ok = error_hint(err, "Give the file the link points to, or remove the link.");
		}
		else if (!S_ISREG(st.st_mode))
			ok = error_set(err, EXIT_DATA,
			               "could not write file \"%s\": it is neither a regular file, a "
			               "character device nor a FIFO",
			               path);
		else
			ok = open_replace(f, base, err);
	}
	else if (errno == ENOENT)
		ok = open_replace(f, base, err);
	else
		ok = error_set(err, EXIT_DATA, "could not write file \"%s\": %s", path, strerror(errno));
	if (ok)
		return f;
fail:
	release(f);
	return NULL;
}

FILE *
outfile_stream(const struct outfile *f)
{
	return f->fp;
}

const char *
outfile_path(const struct outfile *f)
{
	return f->path;
}

static bool
write_error(const struct outfile *f, int e, struct error *err)
{
	return error_set(err, EXIT_DATA, "could not write file \"%s\": %s", f->path,
	                 strerror(e ? e : EIO));
}

bool
outfile_commit(struct outfile *f, struct error *err)
{
	bool ok = false;
	int rc;

	errno = 0;
	if (f->kind == OUTFILE_STDOUT)
	{
		if (fflush(f->fp) != 0 || ferror(f->fp))
			write_error(f, errno, err);
		else
			ok = true;
		release(f);
		return ok;
	}
	if (fflush(f->fp) != 0 || ferror(f->fp))
		write_error(f, errno, err);
	else if (f->kind == OUTFILE_IN_PLACE)
		ok = true;
	else if (fsync(fileno(f->fp)) != 0)
		error_set(err, EXIT_DATA, "could not fsync file \"%s\": %s", f->tmp, strerror(errno));
	else
	{
		/* killed here, the whole file is left behind, still 0600 */
		FAULT("outfile");
		if (fchmod(fileno(f->fp), f->mode) != 0)
			error_set(err, EXIT_DATA, "could not set the mode of file \"%s\": %s", f->tmp,
			          strerror(errno));
		else if (rename(f->tmp, f->path) != 0)
			error_set(err, EXIT_DATA, "could not rename file \"%s\" to \"%s\": %s", f->tmp, f->path,
			          strerror(errno));
		else
		{
			/* the target is whole from here on; only its durability is left */
			free(f->tmp);
			f->tmp = NULL;
			ok = fsync_dir(f->dir, err);
		}
	}
	/* removed while still locked, so no sweep can mistake it for another's */
	if (f->tmp)
		unlink(f->tmp);
	rc = fclose(f->fp);
	if (rc != 0 && ok)
		ok = write_error(f, errno, err);
	release(f);
	return ok;
}

void
outfile_abort(struct outfile *f)
{
	if (f == NULL)
		return;
	if (f->kind != OUTFILE_STDOUT)
	{
		if (f->tmp)
			unlink(f->tmp);
		if (f->fp)
			fclose(f->fp);
	}
	release(f);
}
