// ringwatch: saved Cypher for investigators in Neo4j Browser.
//
// Each block below is one Browser favorite: it starts with a `// name:` line, then `:param` lines you edit
// before running, then the query. `ringwatch db favorites DIR` writes one file per block (plus style.grass)
// to drag into Browser's Favorites drawer; you can also paste a block into the editor.
// Signal ids are keyed pseudonyms: nothing here shows a raw phone, email, document or national id.

// name: Top rings
// The highest-scoring rings, with size, reasons and the latest review decision.
:param limit => 25;
:param min_score => 0.0;
MATCH (r:Ring)
WHERE r.score >= $min_score
OPTIONAL MATCH (r)-[:REVIEWED]->(v:Review)
WITH r, v
ORDER BY v.at DESC
WITH r, collect(v)[0] AS last
RETURN r.id AS ring, r.score AS score, r.size AS size, r.reasons AS reasons,
       coalesce(last.decision, 'unreviewed') AS review, last.at AS reviewed_at
ORDER BY score DESC
LIMIT $limit;

// name: Top rings as a graph
// The same rings drawn with their members (rings sized by score, accounts coloured by risk).
:param limit => 10;
MATCH (r:Ring)
WITH r
ORDER BY r.score DESC
LIMIT $limit
MATCH (a:Account)-[m:MEMBER_OF]->(r)
RETURN r, m, a;

// name: Ring with its evidence
// A ring's members, the signals at least two of them share, and the face matches between them.
:param ring_id => 'ring-id-here';
MATCH (r:Ring {id: $ring_id})<-[m:MEMBER_OF]-(a:Account)
OPTIONAL MATCH (a)-[e]->(s)<-[e2]-(b:Account)-[:MEMBER_OF]->(r)
WHERE NOT s:Account AND NOT s:Ring AND a <> b
OPTIONAL MATCH (a)-[f:SAME_FACE]->(c:Account)-[:MEMBER_OF]->(r)
RETURN r, m, a, e, s, e2, b, f, c;

// name: Ring evidence table
// Which signals a ring's members share, how many members share each, and how many accounts use it overall
// (a signal shared by thousands is a hub such as a carrier NAT or an official document template).
:param ring_id => 'ring-id-here';
MATCH (r:Ring {id: $ring_id})<-[:MEMBER_OF]-(a:Account)-[e]->(s)
WHERE NOT s:Account AND NOT s:Ring
WITH s, type(e) AS via, collect(DISTINCT a.id) AS members
WHERE size(members) > 1
RETURN via, labels(s)[0] AS signal, s.id AS signal_id, size(members) AS members_sharing,
       COUNT { (s)<--(:Account) } AS accounts_overall, members
ORDER BY members_sharing DESC, accounts_overall ASC;

// name: Account neighbourhood
// One account, its signals and face matches, and the other accounts on them (capped: hubs are large).
:param account_id => 'application-id-here';
:param limit => 300;
MATCH (a:Account {id: $account_id})-[e]-(s)
WHERE NOT s:Review
OPTIONAL MATCH (s)-[e2]-(b:Account)
WHERE b <> a
WITH a, e, s, e2, b
LIMIT $limit
RETURN a, e, s, e2, b;

// name: Recent reviews
// Case-review decisions since a date (ISO-8601, UTC), newest first.
:param since => '1970-01-01T00:00:00Z';
:param limit => 50;
MATCH (r:Ring)-[:REVIEWED]->(v:Review)
WHERE v.at >= $since
RETURN v.at AS at, r.id AS ring, v.decision AS decision, v.by AS reviewer, v.reason AS reason,
       r.score AS ring_score, size(coalesce(v.members, [])) AS members_at_review
ORDER BY at DESC
LIMIT $limit;

// name: High-risk accounts not in a reviewed ring
// Accounts above a risk score whose ring (if any) nobody has reviewed yet.
:param min_risk => 0.8;
:param limit => 100;
MATCH (a:Account)
WHERE a.risk_score >= $min_risk
OPTIONAL MATCH (a)-[:MEMBER_OF]->(r:Ring)
WITH a, r
WHERE r IS NULL OR NOT EXISTS { (r)-[:REVIEWED]->(:Review) }
RETURN a.id AS account, a.risk_score AS risk, r.id AS ring, r.score AS ring_score
ORDER BY risk DESC
LIMIT $limit;
