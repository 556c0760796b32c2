"""RabbitMQ workers (dramatiq + pika): FX refresh, payouts, settlement, webhooks, outbox relay.

Nothing runs here yet: the ledger already writes every event to the regional ``outbox`` table in
the same transaction as its effect, and the relay that publishes it arrives with the workers
(issue "Real-time FX: rate refresh workers on RabbitMQ").
"""
