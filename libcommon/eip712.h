/* eip712: off-chain message signatures — EIP-191 personal_sign messages and
 * EIP-712 typed structured data given in the standard JSON form
 *   {"types": {...}, "primaryType": "...", "domain": {...}, "message": {...}}
 * (as produced by wallets, ethers and `cast wallet sign --data`), plus the
 * "Approval" typed data the fund uses for signed approvals.
 *
 * Typed data comes from untrusted clients: unknown or cyclic types, values
 * out of range for their type, bad hex, missing fields or extra fields, wrong
 * JSON kinds and over-deep nesting are all errors, never a crash.
 * Values: uint<M>/int<M> as decimal strings ("-5"), "0x" hex strings
 * (non-negative) or JSON integers up to 2^53; address as "0x" + 40 hex; bool as
 * JSON true/false; bytes<M>/bytes as "0x" hex; string as a JSON string.
 *
 * Memory: cJSON inputs are borrowed; returned strings and cJSON trees are owned
 * by the caller (free / cJSON_Delete). Signatures are 65 bytes r||s||v. */
#ifndef PAIMON_EIP712_H
#define PAIMON_EIP712_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "money.h"

/* Bounds on untrusted input. */
#define EIP712_MAX_DEPTH 16 /* struct/array nesting */
#define EIP712_MAX_TYPES 64 /* struct types in "types" */

/* EIP-191 version 0x45: keccak256("\x19Ethereum Signed Message:\n" + len + msg). */
void eip712_personal_hash(const uint8_t *msg, size_t len, uint8_t out[32]);
/* Signs that hash: v in {27,28} as wallets return it. */
int eip712_personal_sign(const uint8_t *msg, size_t len, const uint8_t key[32], uint8_t sig[65],
                         char *err, size_t errlen);
/* Signer of a personal_sign signature (v 0/1/27/28; high-s refused). */
int eip712_personal_recover(const uint8_t *msg, size_t len, const uint8_t sig[65], uint8_t addr[20],
                            char *err, size_t errlen);

/* encodeType: "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
 * — the primary type then every referenced struct type sorted by name (owned). */
char *eip712_encode_type(const cJSON *types, const char *primary, char *err, size_t errlen);
/* typeHash = keccak256(encodeType). */
int eip712_type_hash(const cJSON *types, const char *primary, uint8_t out[32], char *err,
                     size_t errlen);
/* hashStruct(data) = keccak256(typeHash || encodeData(data)). */
int eip712_hash_struct(const cJSON *types, const char *primary, const cJSON *data, uint8_t out[32],
                       char *err, size_t errlen);
/* Digest keccak256("\x19\x01" || domainSeparator || hashStruct(message)) of a
 * full typed-data object. domain_sep and struct_hash may be NULL. When
 * primaryType is "EIP712Domain" the digest is "\x19\x01" || domainSeparator only. */
int eip712_hash_typed_data(const cJSON *typed, uint8_t digest[32], uint8_t domain_sep[32],
                           uint8_t struct_hash[32], char *err, size_t errlen);
/* Same from JSON text. */
int eip712_hash_typed_json(const char *json, uint8_t digest[32], char *err, size_t errlen);

/* Signs the digest of typed data; v in {27,28}. */
int eip712_sign(const cJSON *typed, const uint8_t key[32], uint8_t sig[65], char *err,
                size_t errlen);
/* Signer of a typed-data signature (v 0/1/27/28; high-s refused). */
int eip712_recover(const cJSON *typed, const uint8_t sig[65], uint8_t addr[20], char *err,
                   size_t errlen);
/* 0 if the signature over typed is valid and from `expected`, else -1. */
int eip712_verify(const cJSON *typed, const uint8_t sig[65], const uint8_t expected[20], char *err,
                  size_t errlen);

/* Domain name of every typed data the fund signs (approvals and operations). */
#define EIP712_FUND_NAME "PaimonPrimeFund"

/* Skeleton of a fund typed data (owned): types.EIP712Domain, the fund's domain
 * {name: EIP712_FUND_NAME, version: "1", chainId, verifyingContract: vault}, primaryType
 * = primary, an empty field list types[primary] (*fields, borrowed into the tree) and an
 * empty message (*message, borrowed) for the caller to fill. */
cJSON *eip712_fund_typed_new(uint64_t chain_id, const uint8_t vault[20], const char *primary,
                             cJSON **fields, cJSON **message);
/* Appends {"name": name, "type": type} to a types[...] field list. */
void eip712_add_field(cJSON *fields, const char *name, const char *type);

/* The fund's approval typed data (owned):
 *   domain {name:"PaimonPrimeFund", version:"1", chainId, verifyingContract: vault}
 *   primaryType "Approval" {ticketId: string, decision: string, nonce: uint256, deadline: uint256}
 * ticket_id and decision must be non-empty valid UTF-8 (at most 256 bytes). */
cJSON *eip712_approval_new(uint64_t chain_id, const uint8_t vault[20], const char *ticket_id,
                           const char *decision, const money_u256 *nonce,
                           const money_u256 *deadline, char *err, size_t errlen);

#endif
