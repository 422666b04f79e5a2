/* Symbol visibility for the public API. */
#ifndef LSMTP_EXPORT_H
#define LSMTP_EXPORT_H

#if defined(LSMTP_STATIC_DEFINE)
#  define LSMTP_API
#elif defined(_WIN32)
#  if defined(LSMTP_BUILDING_LIBRARY)
#    define LSMTP_API __declspec(dllexport)
#  else
#    define LSMTP_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define LSMTP_API __attribute__((visibility("default")))
#else
#  define LSMTP_API
#endif

#ifdef __cplusplus
#  define LSMTP_BEGIN_DECLS extern "C" {
#  define LSMTP_END_DECLS }
#else
#  define LSMTP_BEGIN_DECLS
#  define LSMTP_END_DECLS
#endif

#endif
