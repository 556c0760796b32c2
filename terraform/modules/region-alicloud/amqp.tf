# ApsaraMQ for RabbitMQ: Alibaba Cloud's managed, AMQP 0-9-1 compatible RabbitMQ, private to
# the VPC (no public endpoint). The region's vhost is the one regions.yaml names. Its static
# username and password are derived from a RAM AccessKey (alicloud_amqp_static_account would
# put that key in the Terraform state), so operators create them once and store the full
# AMQP_URL in the region's AMQP_URL secret (README: "Secrets").

resource "alicloud_amqp_instance" "this" {
  instance_name  = local.name
  instance_type  = var.amqp_instance.instance_type
  max_tps        = var.amqp_instance.max_tps
  queue_capacity = var.amqp_instance.queue_capacity
  support_eip    = false
  payment_type   = "Subscription"
  period         = 1
  period_cycle   = "Year"
  auto_renew     = true
}

resource "alicloud_amqp_virtual_host" "this" {
  instance_id       = alicloud_amqp_instance.this.id
  virtual_host_name = var.region.amqp_vhost
}
