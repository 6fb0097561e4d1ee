/* abi: the Solidity contract ABI — type strings and ABI JSON, the head/tail
 * codec, function selectors and event topics derived from the ABI JSON files in
 * schemas/abi/, event log decoding and revert reason decoding.
 *
 * Values travel as cJSON, both in and out:
 *   uint<M>/int<M>  decimal string ("-5" for negatives); on input also "0x" hex
 *                   (non-negative only) or a JSON integer up to 2^53
 *   address         "0x" + 40 hex; output EIP-55 checksummed; input lowercase,
 *                   uppercase or a valid checksum (hex_addr_parse)
 *   bool            JSON true / false
 *   bytes, bytes<M> "0x" hex (bytes<M> exactly M bytes); "function" is bytes24
 *   string          JSON string. Solidity strings may hold any bytes: on output
 *                   invalid UTF-8 and NUL bytes become U+FFFD (lossy, documented)
 *   T[], T[k]       JSON array
 *   tuple           input: JSON array (positional) or object keyed by component
 *                   name; output: object when every component has a distinct
 *                   name, else array
 * Function results decode to a positional JSON array; event and custom-error
 * arguments to an object keyed by name (the position "0", "1"... when unnamed).
 *
 * Data from the chain is untrusted: decoding checks every offset and length
 * against the input, rejects dirty high bits (uint<M>, int<M> sign extension,
 * address, bytes<M> padding, bool > 1), and caps the decoded size relative to
 * the input so overlapping offsets cannot blow it up. With ABI_DECODE_STRICT
 * the padding after bytes/string contents must also be present and zero.
 *
 * Memory: abi_type, abi_fn and abi_contract come from _parse / _from_json /
 * _load and are freed with their _free; everything inside is owned by them and
 * borrowed by callers. Returned cJSON trees and byte buffers are owned by the
 * caller (cJSON_Delete / free). In decoded trees the text of integer, address,
 * bytes and the event name/signature values shares its node's allocation
 * (flagged cJSON_IsReference, freed with the node): read, print, compare, detach,
 * duplicate and delete as usual, but cJSON_SetValuestring refuses such items;
 * replace the item to change a value. */
#ifndef PAIMON_ABI_H
#define PAIMON_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#define ABI_SELECTOR_LEN 4
#define ABI_TOPIC_LEN    32
#define ABI_MAX_DEPTH    32 /* type nesting */

#define ABI_DECODE_STRICT 1 /* flag: bytes/string padding must be present and zero */
/* flag: addresses come out as lowercase hex instead of EIP-55. The checksum costs a
 * keccak per address, about half of decoding a typical log; bulk consumers (the
 * listener, analytics) store lowercase anyway. */
#define ABI_DECODE_LOWER_ADDR 2

typedef enum {
    ABI_UINT,
    ABI_INT,
    ABI_ADDRESS,
    ABI_BOOL,
    ABI_FBYTES, /* bytes<M> (and "function" = bytes24) */
    ABI_BYTES,
    ABI_STRING,
    ABI_ARRAY,  /* T[] */
    ABI_FARRAY, /* T[k] */
    ABI_TUPLE
} abi_kind;

typedef struct abi_type {
    abi_kind kind;
    unsigned size;          /* bits for UINT/INT, bytes for FBYTES */
    int is_function;        /* FBYTES spelled "function" */
    size_t len;             /* FARRAY: k */
    struct abi_type *elem;  /* ARRAY, FARRAY */
    size_t n;               /* TUPLE: number of components */
    struct abi_type **comp; /* TUPLE components */
    char **names;           /* TUPLE: component names (entries may be NULL) */
    int dynamic;            /* needs an offset in its parent */
    size_t head;            /* bytes it takes in its parent's head */
} abi_type;

/* "uint256", "(uint256,bytes)[2]", "int", "bytes32[][3]"... (aliases uint/int
 * become uint256/int256). */
abi_type *abi_type_parse(const char *s, char *err, size_t errlen);
/* One ABI JSON parameter: {"type":"tuple[]","components":[...],"name":...}. */
abi_type *abi_type_from_json(const cJSON *param, char *err, size_t errlen);
void abi_type_free(abi_type *t);
/* Canonical type string as used in signatures, e.g. "(uint256,bytes)[2]" (owned). */
char *abi_type_canonical(const abi_type *t);

/* Standard ABI encoding of v as type t (a tuple encodes as its components with
 * no leading offset, as function arguments do). *out is owned by the caller. */
int abi_encode(const abi_type *t, const cJSON *v, uint8_t **out, size_t *outlen, char *err,
               size_t errlen);
/* Inverse of abi_encode; NULL on malformed data. Trailing bytes are allowed
 * (the head/tail layout does not delimit the end). */
cJSON *abi_decode(const abi_type *t, const uint8_t *data, size_t len, int flags, char *err,
                  size_t errlen);

/* keccak256(signature)[0..4). The signature must already be canonical; use the
 * ones computed in abi_fn / abi_event / abi_error rather than typed strings. */
void abi_selector(const char *signature, uint8_t out[ABI_SELECTOR_LEN]);

typedef struct abi_fn {
    char *name;
    char *signature; /* canonical, e.g. "transfer(address,uint256)" */
    uint8_t selector[ABI_SELECTOR_LEN];
    abi_type *inputs;  /* tuple */
    abi_type *outputs; /* tuple */
    char *mutability;  /* "view", "nonpayable"... ("" when the ABI has none) */
} abi_fn;

typedef struct abi_event {
    char *name;
    char *signature;
    uint8_t topic0[ABI_TOPIC_LEN];
    int anonymous;
    abi_type *inputs; /* tuple of all inputs, in declaration order */
    uint8_t *indexed; /* per input: 1 if indexed */
    size_t n_indexed;
    abi_type *data; /* tuple of the non-indexed inputs */
    char **keys;    /* per input: its key in decoded "args" (name, or position when
                       unnamed or a repeat); computed once at load */
} abi_event;

typedef struct abi_error {
    char *name;
    char *signature;
    uint8_t selector[ABI_SELECTOR_LEN];
    abi_type *inputs;
} abi_error;

typedef struct abi_contract {
    abi_fn *fns;
    size_t n_fns;
    abi_event *events;
    size_t n_events;
    abi_error *errors;
    size_t n_errors;
    int log_flags; /* ABI_DECODE_* flags abi_decode_log* use (default 0) */
} abi_contract;

/* A human signature "name(type,...)" with optional outputs "name(in...)(out...)";
 * parameter names are not allowed. */
abi_fn *abi_fn_parse(const char *sig, char *err, size_t errlen);
void abi_fn_free(abi_fn *fn);

/* selector + encoded arguments (args: JSON array, or object keyed by input name). */
int abi_fn_encode_call(const abi_fn *fn, const cJSON *args, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen);
/* Calldata (selector checked) -> positional array of inputs. */
cJSON *abi_fn_decode_call(const abi_fn *fn, const uint8_t *data, size_t len, int flags, char *err,
                          size_t errlen);
/* eth_call return data -> positional array of outputs. */
cJSON *abi_fn_decode_result(const abi_fn *fn, const uint8_t *data, size_t len, int flags, char *err,
                            size_t errlen);

/* From an ABI JSON array (a solc/Hardhat artifact object with an "abi" member is
 * also accepted). Constructors, fallback and receive entries are skipped. */
abi_contract *abi_contract_from_json(const cJSON *abi, char *err, size_t errlen);
abi_contract *abi_contract_parse(const char *json, char *err, size_t errlen);
abi_contract *abi_contract_load(const char *path, char *err, size_t errlen);
/* <dir>/<contract>.json, the layout of schemas/abi ("PaimonVault" -> PaimonVault.json). */
abi_contract *abi_contract_load_in(const char *dir, const char *contract, char *err, size_t errlen);
void abi_contract_free(abi_contract *c);

/* By name (first match) or by canonical signature when the key contains '('. */
const abi_fn *abi_contract_fn(const abi_contract *c, const char *key);
const abi_event *abi_contract_event(const abi_contract *c, const char *key);
const abi_error *abi_contract_error(const abi_contract *c, const char *key);

/* Decodes a log with a known event: {"event": name, "signature": sig,
 * "args": {...}}. Indexed value types come from their topic; indexed dynamic
 * types, arrays and tuples yield the topic itself (their keccak hash) as hex. */
cJSON *abi_event_decode(const abi_event *ev, const uint8_t (*topics)[ABI_TOPIC_LEN],
                        size_t n_topics, const uint8_t *data, size_t len, char *err, size_t errlen);
/* Finds the non-anonymous event whose topic0 and indexed-argument count match
 * the log (ERC-20 and ERC-721 Transfer share topic0), then decodes it. */
cJSON *abi_decode_log(const abi_contract *c, const uint8_t (*topics)[ABI_TOPIC_LEN],
                      size_t n_topics, const uint8_t *data, size_t len, char *err, size_t errlen);
/* Same from a JSON-RPC log object {"topics": ["0x..."], "data": "0x..."}. */
cJSON *abi_decode_log_json(const abi_contract *c, const cJSON *log, char *err, size_t errlen);

/* Revert data -> never NULL:
 *   {"kind":"empty"}                                    no data
 *   {"kind":"error","message":"..."}                    Error(string)
 *   {"kind":"panic","code":"0x11","meaning":"..."}      Panic(uint256)
 *   {"kind":"custom","error":name,"signature":sig,"args":{...}}  declared in c
 *   {"kind":"raw","data":"0x..."}                       anything else
 * c may be NULL (then no custom errors). */
cJSON *abi_decode_revert(const abi_contract *c, const uint8_t *data, size_t len);
/* One line for logs and API errors, e.g. "Panic 0x11: arithmetic overflow or underflow".
 * -1 only when buf is too small (the text is then truncated). */
int abi_revert_message(const cJSON *rev, char *buf, size_t len);
/* Meaning of a Solidity panic code, or NULL if unknown. */
const char *abi_panic_meaning(uint64_t code);

#endif
