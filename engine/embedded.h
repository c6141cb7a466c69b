/*
 * embedded.h
 *    Files compiled into the program: the shipped rules and the schema
 *    migrations.
 *
 * embedded.c is generated at build time by engine/embed.sh from
 * rules/default.ini and sql/[0-9]*.sql, so the program needs no installed
 * data files and cannot run with a schema from another version.
 */
#ifndef REFINERY_EMBEDDED_H
#define REFINERY_EMBEDDED_H

struct embedded_migration
{
	int version;      /* from the file name: 001_schema.sql -> 1 */
	const char *name; /* "001_schema.sql" */
	const char *sql;
};

extern const char embedded_default_ini[];
extern const struct embedded_migration embedded_migrations[];
extern const int embedded_migration_count;

#endif /* REFINERY_EMBEDDED_H */
