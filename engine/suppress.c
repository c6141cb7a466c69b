/*
 * suppress.c
 *    The suppression list of people erased on request: hashing a contact,
 *    loading the hashed list, and marking the leads that carry one.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "pg.h"
#include "suppress.h"
#include "util.h"

void
suppress_hash(const unsigned char *salt, const char *kind, const char *value,
              unsigned char out[SUPPRESS_HASH_BYTES])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 0;

	if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, salt, SUPPRESS_SALT_BYTES) ||
	    !EVP_DigestUpdate(ctx, kind, strlen(kind)) || !EVP_DigestUpdate(ctx, ":", 1) ||
	    !EVP_DigestUpdate(ctx, value, strlen(value)) || !EVP_DigestFinal_ex(ctx, out, &len))
		memset(out, 0, SUPPRESS_HASH_BYTES); /* matches no stored hash */
	EVP_MD_CTX_free(ctx);
}

void
suppress_hash_phone(const unsigned char *salt, uint64_t e164,
                    unsigned char out[SUPPRESS_HASH_BYTES])
{
	char digits[24];

	snprintf(digits, sizeof(digits), "%" PRIu64, e164);
	suppress_hash(salt, "phone", digits, out);
}

static int
hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SUPPRESS_HASH_BYTES);
}

static bool
unhex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		unsigned v = 0;

		for (int k = 0; k < 2; k++)
		{
			char c = s[2 * i + k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned) (c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned) (c - 'a' + 10);
			else
				return false;
		}
		out[i] = (unsigned char) v;
	}
	return s[2 * n] == '\0';
}

bool
suppress_read_salt(PGconn *conn, unsigned char salt[SUPPRESS_SALT_BYTES], struct error *err)
{
	PGresult *res = pg_query(conn, "reading the salt",
	                         "SELECT encode(salt, 'hex') FROM refinery.forget_salt", 0, NULL, err);
	bool ok;

	if (res == NULL)
		return false;
	ok = PQntuples(res) == 1 && unhex(PQgetvalue(res, 0, 0), salt, SUPPRESS_SALT_BYTES);
	PQclear(res);
	return ok || error_set(err, EXIT_DATA, "refinery.forget_salt holds no 32-byte salt");
}

void
suppress_hex(const unsigned char h[SUPPRESS_HASH_BYTES], char out[SUPPRESS_HEX_BYTES])
{
	for (int i = 0; i < SUPPRESS_HASH_BYTES; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

bool
suppress_load(PGconn *conn, struct suppress_set **out, struct error *err)
{
	struct suppress_set *s;
	PGresult *res;
	int n;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return error_oom(err);
	if (!suppress_read_salt(conn, s->salt, err) ||
	    (res = pg_query(conn, "reading the suppression list",
	                    "SELECT hash FROM refinery.suppressed", 0, NULL, err)) == NULL)
	{
		free(s);
		return false;
	}
	n = PQntuples(res);
	if ((s->hash = malloc((n > 0 ? (size_t) n : 1) * sizeof(*s->hash))) == NULL)
	{
		PQclear(res);
		free(s);
		return error_oom(err);
	}
	for (int r = 0; r < n; r++)
		if (!unhex(PQgetvalue(res, r, 0), s->hash[s->n++], SUPPRESS_HASH_BYTES))
		{
			error_set(err, EXIT_DATA, "refinery.suppressed holds a hash that is not 64 hex digits");
			PQclear(res);
			suppress_free(s);
			return false;
		}
	PQclear(res);
	qsort(s->hash, s->n, SUPPRESS_HASH_BYTES, hash_cmp);
	*out = s;
	return true;
}

bool
suppress_unchanged(PGconn *conn, const struct suppress_set *s, struct error *err)
{
	PGresult *res;
	bool same;

	if (s == NULL)
		return true;
	if (!pg_exec(conn, "locking the suppression list",
	             "LOCK TABLE refinery.suppressed IN SHARE MODE", err) ||
	    (res = pg_query(conn, "reading the suppression list",
	                    "SELECT count(*) FROM refinery.suppressed", 0, NULL, err)) == NULL)
		return false;
	same = strtoull(PQgetvalue(res, 0, 0), NULL, 10) == s->n;
	PQclear(res);
	if (!same)
	{
		error_set(err, EXIT_DATA,
		          "a person was erased (refinery forget) while this run was "
		          "working; nothing was written");
		error_hint(err, "Run again: the new run keeps the erased person out.");
	}
	return same;
}

void
suppress_free(struct suppress_set *s)
{
	if (s == NULL)
		return;
	free(s->hash);
	free(s);
}

static bool
has(const struct suppress_set *s, const unsigned char *h)
{
	return bsearch(h, s->hash, s->n, SUPPRESS_HASH_BYTES, hash_cmp) != NULL;
}

bool
suppress_has_phone(const struct suppress_set *s, uint64_t e164)
{
	unsigned char h[SUPPRESS_HASH_BYTES];

	if (s == NULL || s->n == 0 || e164 == 0)
		return false;
	suppress_hash_phone(s->salt, e164, h);
	return has(s, h);
}

bool
suppress_row_hit(const struct suppress_set *s, const struct batch *b, size_t i)
{
	unsigned char h[SUPPRESS_HASH_BYTES];

	if (s == NULL || s->n == 0)
		return false;
	for (int k = 0; k < BATCH_PHONES; k++)
		if (suppress_has_phone(s, b->phones[i][k]))
			return true;
	if (b->email_norm[i])
	{
		suppress_hash(s->salt, "email", b->email_norm[i], h);
		if (has(s, h))
			return true;
	}
	/* forget suppresses an address's identity key too: the provider's variants of it */
	if (b->email_key[i] && (b->email_norm[i] == NULL || strcmp(b->email_key[i], b->email_norm[i])))
	{
		suppress_hash(s->salt, "email", b->email_key[i], h);
		if (has(s, h))
			return true;
	}
	return false;
}

/*
 * Everything but the lead id and its source goes, and every decision made
 * on the row: nothing downstream can read it and no writer writes it.
 */
static void
clear_row(struct batch *b, size_t i)
{
	for (int c = 0; c < b->ncols; c++)
		if (c != FIELD_LEAD_ID && c != FIELD_SOURCE)
			b->off[c][i] = 0;
	b->created_at[i] = b->last_touch_at[i] = BATCH_NO_TIME;
	b->g_created_at[i] = b->g_last_touch_at[i] = BATCH_NO_TIME;
	b->touch_count[i] = b->g_touch_count[i] = -1;
	b->automation[i] = -1;
	memset(b->phones[i], 0, sizeof(b->phones[i]));
	memset(b->phone_types[i], 0, sizeof(b->phone_types[i]));
	b->phone_repair[i] = b->email_norm[i] = b->email_key[i] = NULL;
	b->name_norm[i] = b->status_norm[i] = NULL;
	b->verdict[i] = VERDICT_BLACKLISTED;
	b->rule_id[i] = SUPPRESS_RULE;
	b->reason[i] = "erased on request: kept out of every list, no personal data kept";
	b->optout[i] = 0;
	b->cluster_id[i] = -1;
	b->survivor[i] = BATCH_NO_ROW;
	b->golden[i] = NULL;
	b->score[i] = 0;
	if (b->points)
		memset(b->points + i * (size_t) b->npoints, 0, (size_t) b->npoints * sizeof(*b->points));
	b->temperature[i] = 0;
	b->persona[i] = NULL;
	b->cohort[i] = -1;
	b->cohort_name[i] = b->channel_plan[i] = NULL;
	b->sla_due_at[i] = BATCH_NO_TIME;
	b->rep_id[i] = -1;
	b->call_order[i] = -1;
	b->p_close[i] = -1;
}

size_t
suppress_apply(const struct suppress_set *s, struct batch *b, int nthreads)
{
	uint8_t *hit;
	int64_t *clusters = NULL;
	size_t marked = 0, nc = 0;

	if (s == NULL || s->n == 0 || b->n == 0)
		return 0;
	if ((hit = calloc(b->n, 1)) == NULL)
		return SIZE_MAX;
	(void) nthreads;
#pragma omp parallel for schedule(static) num_threads(nthreads)
	for (size_t i = 0; i < b->n; i++)
		hit[i] = !(b->rule_id[i] && strcmp(b->rule_id[i], SUPPRESS_RULE) == 0) &&
		         suppress_row_hit(s, b, i);
	/* once clusters exist, a cluster is one person: every record of it goes */
	for (size_t i = 0; i < b->n; i++)
		nc += hit[i] && b->cluster_id[i] >= 0;
	if (nc && (clusters = malloc(nc * sizeof(*clusters))) == NULL)
	{
		free(hit);
		return SIZE_MAX;
	}
	nc = 0;
	for (size_t i = 0; i < b->n; i++)
		if (hit[i] && b->cluster_id[i] >= 0)
			clusters[nc++] = b->cluster_id[i];
	if (nc)
	{
		qsort(clusters, nc, sizeof(*clusters), util_cmp_i64);
		for (size_t i = 0; i < b->n; i++)
			if (!hit[i] && b->cluster_id[i] >= 0 &&
			    bsearch(&b->cluster_id[i], clusters, nc, sizeof(*clusters), util_cmp_i64))
				hit[i] = 1;
	}
	for (size_t i = 0; i < b->n; i++)
		if (hit[i])
		{
			clear_row(b, i);
			marked++;
		}
	free(clusters);
	free(hit);
	return marked;
}
