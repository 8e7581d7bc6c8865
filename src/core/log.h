/* log: leveled, thread-safe logging to stderr as one line per event.
 *
 * Owns: the process log level and the line format. Callers must never pass
 * secrets (API keys, gateway keys, prompt bodies) to these functions.
 */
#ifndef CG_CORE_LOG_H
#define CG_CORE_LOG_H

typedef enum { CG_LOG_DEBUG, CG_LOG_INFO, CG_LOG_WARN, CG_LOG_ERROR } cg_log_level;

void cg_log_set_level(cg_log_level lvl);
int cg_log_level_parse(const char *s, cg_log_level *out);
void cg_log(cg_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define CG_DEBUG(...) cg_log(CG_LOG_DEBUG, __VA_ARGS__)
#define CG_INFO(...) cg_log(CG_LOG_INFO, __VA_ARGS__)
#define CG_WARN(...) cg_log(CG_LOG_WARN, __VA_ARGS__)
#define CG_ERROR(...) cg_log(CG_LOG_ERROR, __VA_ARGS__)

#endif
