/*
 * util.h
 *    Small parsers shared by several modules.
 */
#ifndef REFINERY_UTIL_H
#define REFINERY_UTIL_H

/*
 * A boolean, as the rule files, the lead columns and the side data write it:
 * true/false, yes/no, on/off, 1/0, t/f, y/n, כן/לא, in any case, blanks
 * around it ignored.  1 for true, 0 for false, -1 for anything else
 * (NULL and "" included).
 */
int util_parse_bool(const char *s);

#endif /* REFINERY_UTIL_H */
