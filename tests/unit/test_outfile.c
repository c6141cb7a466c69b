/*
 * test_outfile.c
 *    The one writer of output files: modes, the temporary file and its lock,
 *    links, devices and FIFOs, and the sweep of a killed writer's leftovers.
 *
 * Everything happens in a private temporary folder.  A live writer is stood
 * for by a leftover this program holds open with a flock: the sweep opens
 * its own file description, so it cannot take the lock either.  The FIFO's
 * reader is a child process the parent waits for; nothing waits a fixed
 * time.  Covers RELIABILITY F12 and F13 at the module level;
 * tests/integration/outfiles.sh drives the same through the commands.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "outfile.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test_outfile.XXXXXX";

static void
at(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tmpdir, name);
}

/* Write `text` to `path` through an outfile; false with err filled on failure. */
static bool
write_text(const char *path, const char *text, mode_t mode, struct error *err)
{
	struct outfile *f = outfile_open(path, mode, err);

	if (f == NULL)
		return false;
	fputs(text, outfile_stream(f));
	return outfile_commit(f, err);
}

/* The whole file as a string (malloc'd), or NULL. */
static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	size_t n;

	if (fp == NULL)
		return NULL;
	buf = calloc(1, 1 << 16);
	n = buf ? fread(buf, 1, (1 << 16) - 1, fp) : 0;
	if (buf)
		buf[n] = '\0';
	fclose(fp);
	return buf;
}

static bool
exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

static int
mode_of(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int) (sb.st_mode & 07777) : -1;
}

/* Names in the folder that contain `part`. */
static int
count_named(const char *part)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, part))
			n++;
	closedir(d);
	return n;
}

static void
test_parse_mode(void)
{
	static const struct
	{
		const char *s;
		bool ok;
		unsigned mode;
	} cases[] = {
	    {"0600", true, 0600}, {"600", true, 0600}, {"0640", true, 0640}, {"0", true, 0},
	    {"0777", true, 0777}, {"7", true, 07},     {"", false, 0},       {"0800", false, 0},
	    {"1777", false, 0},   {"4755", false, 0},  {"00600", false, 0},  {"u+rw", false, 0},
	    {"-600", false, 0},   {" 600", false, 0},  {"600 ", false, 0},   {"0x1ff", false, 0},
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
	{
		mode_t m = 01234;
		bool got = outfile_parse_mode(cases[k].s, &m);

		ok(got == cases[k].ok && (!got || m == cases[k].mode) && (got || m == 01234),
		   "mode \"%s\" is %s", cases[k].s, cases[k].ok ? "accepted" : "refused");
	}
	ok(!outfile_parse_mode(NULL, NULL), "no string is refused");
}

static void
test_modes(void)
{
	char path[256];
	struct error err = {0};
	struct stat a, b;
	mode_t old = umask(022);

	at(path, sizeof(path), "m.txt");
	ok(write_text(path, "one\n", 0600, &err), "a new file is written: %s", err.msg);
	is_int(mode_of(path), 0600, "with mode 0600 under umask 022");
	stat(path, &a);
	ok(write_text(path, "two\n", 0640, &err), "an existing file is replaced");
	stat(path, &b);
	is_int(mode_of(path), 0640, "and gets the mode asked for, not the old one");
	ok(a.st_ino != b.st_ino, "by a rename: a new inode");
	umask(077);
	ok(write_text(path, "three\n", 0644, &err), "written again under umask 077");
	is_int(mode_of(path), 0644, "the umask does not take bits away");
	umask(old);
	is_int(count_named(".refinery."), 0, "no temporary file is left");
}

static void
test_temporary(void)
{
	char path[256], tmp[512];
	struct error err = {0};
	struct outfile *f;
	DIR *d;
	struct dirent *e;
	int fd, n = 0;

	at(path, sizeof(path), "t.txt");
	f = outfile_open(path, 0644, &err);
	ok(f != NULL, "a writer opens");
	fputs("data\n", outfile_stream(f));
	tmp[0] = '\0';
	if ((d = opendir(tmpdir)) != NULL)
	{
		while ((e = readdir(d)) != NULL)
			if (strncmp(e->d_name, ".t.txt.refinery.", 16) == 0 && strlen(e->d_name) == 22)
			{
				snprintf(tmp, sizeof(tmp), "%s/%s", tmpdir, e->d_name);
				n++;
			}
		closedir(d);
	}
	is_int(n, 1, "its temporary file is .t.txt.refinery.XXXXXX beside the target");
	ok(!exists(path), "the target does not exist before commit");
	is_int(mode_of(tmp), 0600, "the temporary file is 0600 while written");
	fd = open(tmp, O_RDONLY);
	ok(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK,
	   "and its writer holds its lock");
	if (fd >= 0)
		close(fd);
	outfile_abort(f);
	ok(!exists(tmp) && !exists(path), "abort removes it and creates no target");
}

static void
test_links(void)
{
	char path[512], victim[256], dir[256];
	struct error err = {0};
	char *got;

	at(victim, sizeof(victim), "victim.txt");
	write_text(victim, "precious\n", 0600, &err);
	at(path, sizeof(path), "link.txt");
	if (symlink(victim, path) != 0)
		diag("symlink: %s", strerror(errno));
	ok(outfile_open(path, 0600, &err) == NULL && err.code == EXIT_DATA &&
	       strstr(err.msg, "it is a symbolic link") && strstr(err.msg, path),
	   "a link to a regular file is refused: %s", err.msg);
	got = slurp(victim);
	is_str(got, "precious\n", "its victim is untouched");
	free(got);
	ok(exists(path) && mode_of(victim) == 0600, "the link is left as it is");

	at(path, sizeof(path), "dangling.txt");
	if (symlink("/nonexistent/target", path) != 0)
		diag("symlink: %s", strerror(errno));
	ok(outfile_open(path, 0600, &err) == NULL && strstr(err.msg, "it is a symbolic link"),
	   "a dangling link is refused too");
	ok(!exists("/nonexistent/target"), "and nothing is created where it points");

	/* the old predictable name of report and calibrate: never opened */
	at(path, sizeof(path), "r.html.tmp");
	if (symlink(victim, path) != 0)
		diag("symlink: %s", strerror(errno));
	at(path, sizeof(path), "r.html");
	ok(write_text(path, "<html>\n", 0600, &err), "a write beside a link at NAME.tmp succeeds");
	got = slurp(victim);
	is_str(got, "precious\n", "and does not follow that link");
	free(got);

	at(dir, sizeof(dir), "sub");
	mkdir(dir, 0700);
	ok(outfile_open(dir, 0600, &err) == NULL && strstr(err.msg, "it is a folder"),
	   "a folder is refused");
	snprintf(path, sizeof(path), "%s/", dir);
	ok(outfile_open(path, 0600, &err) == NULL && strstr(err.msg, "invalid output file name"),
	   "a name ending in / is refused");
}

static void
test_devices(void)
{
	char path[256], out[256];
	struct error err = {0};
	struct stat sb;
	struct outfile *f;
	pid_t child;
	int status;
	char *got;

	ok(write_text("/dev/null", "gone\n", 0600, &err), "/dev/null is written in place");
	ok(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode), "and stays a character device");

	/* through a link of our own, so that a broken build cannot replace /dev/full itself */
	at(path, sizeof(path), "full");
	if (symlink("/dev/full", path) == 0 && stat(path, &sb) == 0 && S_ISCHR(sb.st_mode))
	{
		ok(!write_text(path, "no room\n", 0600, &err) && err.code == EXIT_DATA &&
		       strstr(err.msg, path) && strstr(err.msg, "No space left on device"),
		   "ENOSPC on /dev/full is an error naming the file: %s", err.msg);
		ok(lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode) && stat(path, &sb) == 0 &&
		       S_ISCHR(sb.st_mode),
		   "the link still leads to the device");
	}
	else
	{
		ok(1, "ENOSPC on /dev/full # SKIP no /dev/full");
		ok(1, "the link still leads to the device # SKIP no /dev/full");
	}

	/* a FIFO: a child reads it whole into a file; the parent waits for the child */
	at(path, sizeof(path), "fifo");
	at(out, sizeof(out), "fifo.out");
	if (mkfifo(path, 0600) != 0)
	{
		ok(0, "mkfifo: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	if ((child = fork()) == 0)
	{
		char buf[4096];
		ssize_t n;
		int in = open(path, O_RDONLY), to = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		while (in >= 0 && to >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
			if (write(to, buf, (size_t) n) != n)
				_exit(1);
		_exit(in >= 0 && to >= 0 ? 0 : 1);
	}
	f = outfile_open(path, 0600, &err);
	ok(f != NULL, "a FIFO opens once its reader is there");
	if (f == NULL)
	{
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		return;
	}
	for (int k = 0; k < 1000; k++)
		fprintf(outfile_stream(f), "line %d\n", k);
	error_clear(&err);
	ok(outfile_commit(f, &err), "writing it succeeds%s%s", err.msg[0] ? ": " : "", err.msg);
	ok(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "the reader saw the end of the data");
	got = slurp(out);
	ok(got && strncmp(got, "line 0\n", 7) == 0 && strstr(got, "line 999\n") && strlen(got) == 8890,
	   "and got every byte");
	free(got);
	ok(stat(path, &sb) == 0 && S_ISFIFO(sb.st_mode), "the FIFO is still a FIFO");
}

static void
test_sweep(void)
{
	char path[256], dead[256], live[256], other[256], link[256], near[256], victim[256];
	struct error err = {0};
	int held;
	char *got;

	at(path, sizeof(path), "s.txt");
	at(dead, sizeof(dead), ".s.txt.refinery.dead01");
	at(live, sizeof(live), ".s.txt.refinery.live01");
	at(other, sizeof(other), ".other.txt.refinery.dead02");
	at(near, sizeof(near), ".s.txt.refinery.dead0123");
	at(link, sizeof(link), ".s.txt.refinery.link01");
	at(victim, sizeof(victim), "victim2.txt");
	write_text(dead, "killed\n", 0600, &err);
	write_text(live, "being written\n", 0600, &err);
	write_text(other, "another target\n", 0600, &err);
	write_text(near, "not our pattern\n", 0600, &err);
	write_text(victim, "precious\n", 0600, &err);
	if (symlink(victim, link) != 0)
		diag("symlink: %s", strerror(errno));
	held = open(live, O_RDONLY);
	ok(held >= 0 && flock(held, LOCK_EX | LOCK_NB) == 0, "a live writer's lock is held");

	ok(write_text(path, "new\n", 0600, &err), "a write of s.txt: %s", err.msg);
	ok(!exists(dead), "removes a leftover of s.txt nobody holds");
	ok(exists(live), "keeps the one a live writer holds");
	ok(exists(other), "keeps another target's");
	ok(exists(near), "keeps a name that only looks alike");
	ok(exists(link), "keeps a link of that name");
	got = slurp(victim);
	is_str(got, "precious\n", "without touching what it points to");
	free(got);

	if (held >= 0)
		close(held);
	ok(write_text(path, "newer\n", 0600, &err), "once that writer is gone, another write");
	ok(!exists(live), "removes its file too");
	got = slurp(path);
	is_str(got, "newer\n", "and the target holds the last write");
	free(got);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL)
	{
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_parse_mode();
	test_modes();
	test_temporary();
	test_links();
	test_devices();
	test_sweep();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			diag("could not remove %s", tmpdir);
	}
	return done_testing();
}
