/* dashboard_assets: the dashboard's files and the OpenAPI document, embedded at build time. */
#ifndef TL_DASHBOARD_ASSETS_H
#define TL_DASHBOARD_ASSETS_H

#include <stddef.h>

#include "httpd.h"

/*
 * Generated into the build directory by scripts/embed_assets.py from dashboard/ (uPlot from
 * dashboard/node_modules, pinned by dashboard/package-lock.json). Static data: valid for the
 * program's life, ready for tl_httpd_static.
 */
extern const struct tl_httpd_file tl_dashboard_files[];
extern const size_t tl_dashboard_file_count;

#endif
