/* lsmtp: an embeddable SMTP client and server library.
 * This umbrella header includes the whole public API. */
#ifndef LSMTP_LSMTP_H
#define LSMTP_LSMTP_H

#include <lsmtp/export.h>
#include <lsmtp/version.h>
#include <lsmtp/status.h>
#include <lsmtp/ext.h>
#include <lsmtp/alloc.h>
#include <lsmtp/base64.h>
#include <lsmtp/reply.h>
#include <lsmtp/command.h>
#include <lsmtp/address.h>
#include <lsmtp/data.h>
#include <lsmtp/server.h>
#include <lsmtp/client.h>
#include <lsmtp/sasl.h>
#include <lsmtp/deliver.h>
#include <lsmtp/sasl_server.h>
#include <lsmtp/authfile.h>
#include <lsmtp/submit.h>
#include <lsmtp/dns.h>
#include <lsmtp/spool.h>
#include <lsmtp/net.h>
#include <lsmtp/tls.h>

#endif
