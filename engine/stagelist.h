/*
 * stagelist.h
 *    The pipeline's stages, in run order: the one list everything else about
 *    the stages is generated from.
 *
 * Like PostgreSQL's rmgrlist.h this file has no include guard: an includer
 * defines STAGE (and PLAN_STAGE, or leaves it to mean STAGE), includes the
 * file and takes what it needs of each line.  From it come the stage table
 * and the stage names (pipeline.c, so --help too), the rule set's config
 * slots and the declarations of every stage's functions (stage.h), their
 * loading and freeing (ruleset.c), the order of the parts of
 * rules/default.ini (rules/merge.sh) and the stage lists the tests expect
 * (tests/cli/cli.sh, tests/integration/roundtrip.sh), which read the names
 * of this file with sed: keep each stage on one line that starts with
 * STAGE(" or PLAN_STAGE(".
 *
 * STAGE(name, function, config type, load, free, slot):
 *     name      the stage's name in --help, run_stages and the rule-file parts
 *     function  bool f(struct batch *, const struct ruleset *, struct stage_stats *, struct error *)
 *     load      bool f(struct rules *, config type **, struct error *), called once by
 *               ruleset_load() in this order; the rule set owns the config
 *     free      void f(config type *), NULL a no-op
 *     slot      the config's member of struct ruleset
 * PLAN_STAGE(...): the same, for a stage whose loader also takes the leads'
 *     numbering plan, the normaliser's (loaded before it):
 *     bool f(struct rules *, const struct phone_plan *, config type **, struct error *)
 *
 * Adding a stage is its own files (the stage, its header, its rules part,
 * its test and fixtures), one line here, and its lines in Makefile.am.
 */

#ifndef PLAN_STAGE
#define PLAN_STAGE STAGE
#endif

/* clang-format off */
/*    name         function         config type              load                   free                   slot */
STAGE("normalize", normalize_stage, struct normalize_config, normalize_config_load, normalize_config_free, normalize)
PLAN_STAGE("blacklist", blacklist_stage, struct blacklist_config, blacklist_config_load, blacklist_config_free, blacklist)
STAGE("dedupe",    dedupe_stage,    struct dedupe_config,    dedupe_config_load,    dedupe_config_free,    dedupe)
STAGE("partial",   partial_stage,   struct partial_config,   partial_config_load,   partial_config_free,   partial)
STAGE("score",     score_stage,     struct score_config,     score_config_load,     score_config_free,     score)
STAGE("cohort",    cohort_stage,    struct cohort_config,    cohort_config_load,    cohort_config_free,    cohort)
STAGE("match",     match_stage,     struct match_config,     match_config_load,     match_config_free,     match)
/* clang-format on */

#undef PLAN_STAGE
