-- tests/bench/why.sql -- where a run's remaining quality errors come from (not a test).
--   psql -X -v sch=gen_100000 [-v run=ID] -f tests/bench/why.sql
-- Reads a schema loaded with generated leads and their ground truth (tests/bench/bench.sh,
-- or load.sh of the shared benchmark: tables leads and truth, truth.dirt naming what was
-- planted in each row) and the run (default: the latest committed one).  Three tables:
--   1. opted-out people still kept, by what their opt-out row carries, with the number of
--      other kept people whose normalised name (any word order) equals that row's, in the
--      row's city when it has one: the people a rule strong enough to catch the opt-out
--      from the name alone would suppress with it
--   2. reachable people lost (none of their records kept or held for review), by how their
--      usable records were removed
--   3. duplicate records kept: pairs of kept records of one person, by the evidence the two
--      rows share (none of it means only the name and the dates are left to link them)
\set ON_ERROR_STOP on
\pset pager off
\if :{?run}
\else
SELECT max(run_id) AS run FROM refinery.runs WHERE status = 'committed' \gset
\endif
SET search_path = :sch, public;
SET work_mem = '256MB';
CREATE TEMP TABLE w AS
SELECT r.lead_id::bigint AS lead_id, r.verdict, r.reason, r.survivor_id, r.phone_norm, r.email_norm,
       (SELECT string_agg(x, ' ' ORDER BY x) FROM regexp_split_to_table(r.name_norm, ' ') x) AS name_key,
       t.entity_id, t.is_blacklisted, t.is_partial, t.is_optout, t.dirt,
       l.phone IS NULL AND l.email IS NULL AS no_contact, l.city,
       CASE WHEN t.dirt LIKE '%dup_near%' THEN 'resubmitted within days'
            WHEN t.dirt ~ '(^|;)dup(;|$)' THEN 'later record'
            ELSE 'first record' END AS kind
FROM refinery.lead_results r
JOIN truth t ON t.lead_id = r.lead_id::bigint
JOIN leads l ON l.lead_id = t.lead_id
WHERE r.run_id = :run;
CREATE INDEX ON w (name_key);
ANALYZE w;
CREATE TEMP TABLE kept AS SELECT DISTINCT entity_id FROM w WHERE verdict IN ('kept', 'nurture');
CREATE TEMP TABLE optout AS SELECT DISTINCT entity_id FROM w WHERE is_optout = 1;

\echo 1. opted-out people still kept, by their opt-out row
CREATE TEMP TABLE oo AS
SELECT * FROM w WHERE is_optout = 1 AND entity_id IN (SELECT entity_id FROM kept);
WITH g AS (
  SELECT no_contact, city IS NULL AS no_city, kind, count(DISTINCT entity_id) AS people
  FROM oo GROUP BY 1, 2, 3)
SELECT CASE WHEN g.no_contact THEN 'no phone, no e-mail' ELSE 'phone or e-mail' END AS opt_out_row,
       CASE WHEN g.no_city THEN 'no city' ELSE 'city' END AS city,
       g.kind, g.people,
       (SELECT count(DISTINCT k.entity_id)
        FROM oo o2 JOIN w k ON k.name_key = o2.name_key AND (o2.city IS NULL OR k.city = o2.city)
        WHERE o2.no_contact = g.no_contact AND (o2.city IS NULL) = g.no_city AND o2.kind = g.kind
          AND k.verdict IN ('kept', 'nurture') AND k.entity_id NOT IN (SELECT entity_id FROM optout)) AS kept_namesakes
FROM g ORDER BY g.no_contact DESC, g.no_city DESC, g.kind;

\echo 2. reachable people lost, by how their usable records were removed
WITH reachable AS (
  SELECT DISTINCT entity_id FROM w WHERE is_blacklisted = 0 AND is_partial = 0
  EXCEPT SELECT entity_id FROM optout),
lost AS (SELECT entity_id FROM reachable EXCEPT SELECT entity_id FROM kept
         EXCEPT SELECT entity_id FROM w WHERE verdict = 'review'),
how AS (
  SELECT DISTINCT ON (x.entity_id) x.entity_id,
         CASE WHEN x.verdict = 'duplicate' AND s.entity_id <> x.entity_id THEN 'merged into another person''s record'
              WHEN x.verdict = 'blacklisted' AND x.reason LIKE 'person opted out%' THEN 'in a cluster with another person''s opt-out'
              ELSE x.verdict || ' (' || coalesce(left(x.reason, 40), '') || ')' END AS how
  FROM w x LEFT JOIN w s ON s.lead_id::text = x.survivor_id
  WHERE x.entity_id IN (SELECT entity_id FROM lost) AND x.is_blacklisted = 0 AND x.is_partial = 0
  ORDER BY x.entity_id, x.lead_id)
SELECT how, count(*) AS people FROM how GROUP BY 1 ORDER BY 2 DESC;

\echo 2b. people held for review (verdict review), by whether they truly opted out
SELECT CASE WHEN x.entity_id IN (SELECT entity_id FROM optout) THEN 'opted out' ELSE 'never opted out' END AS person,
       CASE WHEN x.reason ~ 'match probability 0\.0[0-4]' THEN 'a name alone' ELSE 'a weak match' END AS link,
       count(DISTINCT x.entity_id) AS people
FROM w x WHERE x.verdict = 'review' GROUP BY 1, 2 ORDER BY 1, 2;

\echo 3. duplicate records kept (pairs of kept records of one person), by what the rows share
SELECT CASE WHEN a.phone_norm = b.phone_norm THEN 'a phone'
            WHEN a.email_norm = b.email_norm THEN 'an e-mail'
            WHEN a.name_key = b.name_key AND a.city = b.city THEN 'name and city only'
            WHEN a.name_key = b.name_key THEN 'name only'
            ELSE 'not even the name as written' END AS shared,
       count(*) AS pairs
FROM w a JOIN w b ON a.entity_id = b.entity_id AND a.lead_id < b.lead_id
WHERE a.verdict IN ('kept', 'nurture') AND b.verdict IN ('kept', 'nurture')
GROUP BY 1 ORDER BY 2 DESC;
