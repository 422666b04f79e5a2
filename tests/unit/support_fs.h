/* File-system helpers for unit tests that work in scratch folders. */
#ifndef LSMTP_TEST_SUPPORT_FS_H
#define LSMTP_TEST_SUPPORT_FS_H

/* Remove path and, when it is a folder, everything below it (symbolic
 * links are removed, never followed). Missing paths are ignored. */
void fs_remove_tree(const char *path);

#endif
