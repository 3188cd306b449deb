/*
 * inbound.c - the one route every inbound SMS takes once it is whole and
 * stored in the MO log (mo.c hands it here): compliance keywords first, then
 * open conversations, then keyword flows, then the ESME accounts. Each step
 * may claim the message; the first that does ends the chain, and what no
 * step claims stays in the MO log (counted).
 */
#include <string.h>

#include "nudged.h"

/* One link of the chain: returns 1 if it claimed the message. */
typedef int (*inbound_step_fn)(
    uint64_t mo_id, const struct mo_record *mo, const char *text);

static struct metric *metric_unclaimed;

/* The chain, in order; later steps only see what earlier ones left. */
static const struct {
	const char *name;
	inbound_step_fn fn;
} inbound_steps[] = {
    {"keyword", keyword_route},
    {"conversation", conversation_route},
    {"keyword-flow", conversation_route_keyword},
    {"esme", server_route_mo},
};

static void
inbound_route(
    void *arg, uint64_t mo_id, const struct mo_record *mo, const char *text)
{
	size_t i;

	for (i = 0; i < sizeof(inbound_steps) / sizeof(inbound_steps[0]); i++)
		if (inbound_steps[i].fn(mo_id, mo, text)) {
			log_debug(mo_id, "inbound", "claimed", "by=%s",
			    inbound_steps[i].name);
			return;
		}
	metrics_add(metric_unclaimed, 1);
	log_info(mo_id, "inbound", "unclaimed", "to=%s", mo->to);
}

void
inbound_init(const struct config *config)
{
	metric_unclaimed = metrics_counter("nudge_inbound_unclaimed_total",
	    NULL, "Inbound SMS no keyword, conversation, flow or ESME took.");
	mo_set_route(inbound_route, NULL);
}
