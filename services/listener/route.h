/* route: priority routing of decoded chain events onto chain.events' three streams
 * (ARCHITECTURE §3.1): rules from configuration map an event name and conditions on its
 * decoded arguments to critical / high / normal. Amounts are compared as uint256
 * (money.h), never as floating point.
 *
 * Rule text, rules separated by ';' (spaces around tokens ignored):
 *     Event[?cond[&cond...]]=priority         Event may be '*' (any event)
 *     cond: arg OP literal, OP one of == != >= <= > <
 * A literal of digits (optionally with an exponent "100000e18" = 100000 * 10^18) is
 * compared numerically with the argument (a decimal string as abi.h decodes uint);
 * anything else is compared as text, ignoring case (addresses, true / false). A
 * numeric condition on an argument that is missing or not a non-negative integer is
 * false. The first matching rule wins; no match is normal.
 *
 * Memory: route_parse fills an owned table (route_table_free); args are borrowed. */
#ifndef LISTENER_ROUTE_H
#define LISTENER_ROUTE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "bus.h"
#include "money.h"

#define ROUTE_NAME_MAX  64
#define ROUTE_TEXT_MAX  80
#define ROUTE_MAX_CONDS 8

/* ARCHITECTURE §3.1 / §5 defaults: emergency, pause and role changes are critical;
 * redemptions over the approval threshold (STANDARD = channel 0 > 100,000 USDT,
 * EMERGENCY = channel 1 > 30,000 USDT, 18 decimals) and deposits of 1,000,000 USDT
 * or more are high. */
#define ROUTE_DEFAULT_RULES                                                                        \
    "EmergencyModeChanged=critical; Paused=critical; Unpaused=critical; "                          \
    "RoleGranted=critical; RoleRevoked=critical; RoleAdminChanged=critical; "                      \
    "RedemptionRequested?channel==0&grossAssets>100000e18=high; "                                  \
    "RedemptionRequested?channel==1&grossAssets>30000e18=high; "                                   \
    "Deposit?assets>=1000000e18=high"

typedef enum { ROUTE_EQ, ROUTE_NE, ROUTE_GE, ROUTE_LE, ROUTE_GT, ROUTE_LT } route_op;

typedef struct route_cond {
    char arg[ROUTE_NAME_MAX];
    route_op op;
    int numeric;
    money_u256 num;
    char text[ROUTE_TEXT_MAX];
} route_cond;

typedef struct route_rule {
    char event[ROUTE_NAME_MAX]; /* "*" = any */
    route_cond conds[ROUTE_MAX_CONDS];
    size_t nconds;
    bus_priority prio;
} route_rule;

typedef struct route_table {
    route_rule *rules;
    size_t n;
} route_table;

/* 0, or -1 naming the bad rule; *out is untouched on failure. */
int route_parse(const char *spec, route_table *out, char *err, size_t errlen);
void route_table_free(route_table *t);

/* args: the decoded arguments object (abi_decode_log_json's "args"); may be NULL. */
bus_priority route_classify(const route_table *t, const char *event, const cJSON *args);

#endif
